#!/usr/bin/env node
import { buildProgram } from './program.js';

const program = buildProgram(
  { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) },
  (code) => {
    process.exitCode = code;
  },
);
await program.parseAsync(process.argv);
