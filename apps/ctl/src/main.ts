#!/usr/bin/env node
import type { Command } from 'commander';
import { buildProgram, usageExitCode } from './program.js';

// grpc-js hands the gateway's IP address to TLS as the server name, and Node prints a deprecation
// warning (DEP0123) for that on stderr at each connection; the output is for people and scripts.
process.noDeprecation = true;

// `onehostctl conns | head -2`: a reader that stops early is not an error; stop quietly.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const program = buildProgram(
  { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) },
  (code) => {
    process.exitCode = code;
  },
);
// Commander would exit 1 on a usage error; onehostctl's usage errors are 2 (see usageExitCode).
const override = (c: Command) => {
  c.exitOverride();
  for (const sub of c.commands) override(sub);
};
override(program);
try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.exitCode = usageExitCode(err);
}
