import { closeSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const native = require('../build/Release/onehost_kernel.node') as {
  bpfObjGet(path: string): number;
  bpfMapGetFdById(id: number): number;
  bpfMapOp(op: number, fd: number, key: Uint8Array | null, value: Uint8Array | null, flags?: number): boolean;
};

const OP = { LOOKUP: 0, UPDATE: 1, DELETE: 2, NEXT_KEY: 3 } as const;

/** Flags of {@link BpfMap.update} (linux/bpf.h). */
export const BPF_UPDATE = { ANY: 0, NOEXIST: 1, EXIST: 2 } as const;

/**
 * BpfMap is a map pinned in a bpffs, reached by bpf(2) system calls (one per call, synchronous). Keys
 * and values are byte arrays of the map's exact sizes (the kernel reads and writes that many bytes):
 * the caller checks that, {@link BpfMap.open} takes the sizes to check them once per call.
 */
export class BpfMap {
  private fd: number;

  private constructor(
    fd: number,
    readonly keySize: number,
    readonly valueSize: number,
  ) {
    this.fd = fd;
  }

  /** open gets the pinned map at `path`. Throws (code BPF_SYSCALL) when there is none. */
  static open(path: string, keySize: number, valueSize: number): BpfMap {
    return new BpfMap(native.bpfObjGet(path), keySize, valueSize);
  }

  /** openById gets a loaded map by its id (e.g. from `bpftool prog show`). Throws when there is none. */
  static openById(id: number, keySize: number, valueSize: number): BpfMap {
    return new BpfMap(native.bpfMapGetFdById(id), keySize, valueSize);
  }

  private check(b: Uint8Array | null, n: number, what: string): void {
    if (this.fd < 0) throw new Error('BpfMap is closed');
    if (b !== null && b.length !== n) throw new RangeError(`${what} must be ${n} bytes, not ${b.length}`);
  }

  /** lookup copies the value of `key` into `out`; false when there is none. */
  lookup(key: Uint8Array, out: Uint8Array): boolean {
    this.check(key, this.keySize, 'key');
    this.check(out, this.valueSize, 'value');
    return native.bpfMapOp(OP.LOOKUP, this.fd, key, out);
  }

  /** update writes `value` for `key`. Throws when the map is full (E2BIG) or the flags refuse it. */
  update(key: Uint8Array, value: Uint8Array, flags: number = BPF_UPDATE.ANY): void {
    this.check(key, this.keySize, 'key');
    this.check(value, this.valueSize, 'value');
    native.bpfMapOp(OP.UPDATE, this.fd, key, value, flags);
  }

  /** delete removes `key`; false when it was not there. */
  delete(key: Uint8Array): boolean {
    this.check(key, this.keySize, 'key');
    return native.bpfMapOp(OP.DELETE, this.fd, key, null);
  }

  /** nextKey writes the key after `key` (the first one for null) into `out`; false at the end. */
  nextKey(key: Uint8Array | null, out: Uint8Array): boolean {
    this.check(key, this.keySize, 'key');
    this.check(out, this.keySize, 'key');
    return native.bpfMapOp(OP.NEXT_KEY, this.fd, key, out);
  }

  /** keys lists every key (a copy each); a map changed meanwhile may skip or repeat some. */
  keys(): Uint8Array[] {
    const out: Uint8Array[] = [];
    let prev: Uint8Array | null = null;
    for (;;) {
      const next = new Uint8Array(this.keySize);
      if (!this.nextKey(prev, next)) return out;
      out.push(next);
      prev = next;
    }
  }

  /** close closes the file descriptor (the map lives on while pinned). Safe to call twice. */
  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
