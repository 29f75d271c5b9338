// Builds the tc programs from C (never shipped prebuilt): clang -target bpf, with BTF (-g) so that
// bpftool can load the BTF-defined maps. The multiarch include path has asm/types.h for the UAPI headers.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { arch } from 'node:os';

const multiarch = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' }[arch()] ?? `${arch()}-linux-gnu`;
mkdirSync('dist', { recursive: true });
execFileSync(
  'clang',
  [
    '-O2',
    '-g',
    '-Wall',
    '-target',
    'bpf',
    `-I/usr/include/${multiarch}`,
    '-c',
    'bpf/splice.bpf.c',
    '-o',
    'dist/splice.bpf.o',
  ],
  { stdio: 'inherit' },
);
