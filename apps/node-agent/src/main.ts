#!/usr/bin/env node
// onehost-agent: the node agent daemon (see daemon.ts); flags in daemon-cli.ts.
import { CommanderError } from 'commander';
import { AgentDaemon } from './daemon.js';
import { buildAgentProgram, prepareDaemon, UsageError } from './daemon-cli.js';

// grpc-js hands the gateway's IP address to TLS as the server name, and Node prints a deprecation
// warning (DEP0123) for that on stderr at each connection; the output is for people and scripts.
process.noDeprecation = true;

const program = buildAgentProgram(async (args) => {
  let daemon: AgentDaemon;
  try {
    daemon = new AgentDaemon(await prepareDaemon(args));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`onehost-agent: ${err.message}\n`);
    process.exit(2);
  }
  process.on('SIGTERM', () => daemon.stop('SIGTERM'));
  process.on('SIGINT', () => daemon.stop('SIGINT'));
  process.exit(await daemon.run());
});
program.exitOverride();
try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (!(err instanceof CommanderError)) {
    process.stderr.write(`onehost-agent: ${err instanceof Error ? err.message : String(err)}\n`);
    // a bad --config file or a missing required setting is a usage error, like a bad flag
    process.exit(err instanceof UsageError ? 2 : 1);
  }
  // Commander has printed the problem already; help and version are not failures.
  process.exit(err.exitCode === 0 ? 0 : 2);
}
