#!/usr/bin/env node
// onehost-agent-net: apply a NodeConfig (JSON) to this network namespace, or restore what an earlier
// apply changed. The agent proper calls the same functions after joining; this is for operators and tests.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { APPLY_STEPS, type ApplyStep, applyNodeConfig, restore } from './apply.js';
import { type NodeConfig, resolveConfig } from './config.js';

const USAGE = `usage:
  onehost-agent-net apply --config FILE [--hold] [--pause-at STEP]
  onehost-agent-net restore (--config FILE | --state FILE)
apply prints what it applied as one JSON line. --hold keeps running and restores on SIGTERM/SIGINT.
--pause-at stops before a step (${APPLY_STEPS.join(', ')}) and waits: for crash tests.`;

async function loadConfig(file: string): Promise<NodeConfig> {
  return JSON.parse(await readFile(file, 'utf8')) as NodeConfig;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      state: { type: 'string' },
      hold: { type: 'boolean', default: false },
      'pause-at': { type: 'string' },
    },
  });
  const command = positionals[0];
  if (command === 'apply' && values.config) {
    const config = await loadConfig(values.config);
    const pauseAt = values['pause-at'] as ApplyStep | undefined;
    if (pauseAt !== undefined && !APPLY_STEPS.includes(pauseAt)) throw new Error(`unknown step ${pauseAt}`);
    const applied = await applyNodeConfig(config, {
      onStep: (step) => {
        if (step !== pauseAt) return;
        console.log(`paused at ${step}`);
        return new Promise<void>(() => setInterval(() => undefined, 60_000));
      },
    });
    console.log(JSON.stringify(applied));
    if (!values.hold) return 0;
    return new Promise<number>((resolve, reject) => {
      const keepAlive = setInterval(() => undefined, 60_000);
      const stop = () => {
        clearInterval(keepAlive);
        restore(applied.stateFile).then(() => {
          console.log('restored');
          resolve(0);
        }, reject);
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      console.log('holding');
    });
  }
  if (command === 'restore' && (values.state || values.config)) {
    const stateFile = values.state ?? resolveConfig(await loadConfig(values.config!)).stateFile;
    console.log(JSON.stringify(await restore(stateFile)));
    return 0;
  }
  console.error(USAGE);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const errors = err instanceof AggregateError ? err.errors : [];
    console.error(`onehost-agent-net: ${err instanceof Error ? err.message : String(err)}`);
    for (const e of errors) console.error(`  ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
