#!/usr/bin/env node
// ctl-server-main: onehostctl's command line run in this one process, command after command, for the
// suites (ctl-server.ts starts it in the gateway host's namespace): a node process per query costs its
// start and module loading, half a second on a loaded machine, and the suites poll the gateway often.
// Reads JSON lines {"id", "argv"} on stdin (argv: onehostctl's arguments), answers each with one JSON line
// {"id", "code", "stdout", "stderr"}: what the CLI binary would exit with and print. Requests run
// concurrently. Exits when stdin ends.
import { createInterface } from 'node:readline';
import { buildProgram, usageExitCode } from '@onehost/ctl/dist/program.js';
import type { Command } from 'commander';

// as the binary (main.ts): no DEP0123 warning for an IP address as the TLS server name
process.noDeprecation = true;

/** run is one onehostctl invocation, as main.ts makes it, with its output captured. */
async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  let code = 0;
  const program = buildProgram(
    {
      out: (l) => {
        stdout += `${l}\n`;
      },
      err: (l) => {
        stderr += `${l}\n`;
      },
    },
    (c) => {
      code = c;
    },
  );
  // main.ts: commander's usage errors exit 2 (exitOverride); its help and messages go to our streams
  const override = (c: Command) => {
    c.exitOverride();
    c.configureOutput({
      writeOut: (s) => {
        stdout += s;
      },
      writeErr: (s) => {
        stderr += s;
      },
    });
    for (const sub of c.commands) override(sub);
  };
  override(program);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    try {
      code = usageExitCode(err);
    } catch (e) {
      // the binary would die of it: exit 1 with the stack on stderr
      code = 1;
      stderr += `${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`;
    }
  }
  return { code, stdout, stderr };
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim() === '') return;
  const { id, argv } = JSON.parse(line) as { id: number; argv: string[] };
  void run(argv).then((r) => process.stdout.write(`${JSON.stringify({ id, ...r })}\n`));
});
lines.on('close', () => {
  // the suite is done with us (or gone): finish what runs, then let the process end on its own
  process.stdin.destroy();
});
