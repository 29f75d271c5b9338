#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { ControlError, EtcdStoreError } from '@onehost/control';
import { Command, Option } from 'commander';
import { pino } from 'pino';
import { ConfigError, type GatewayConfig, loadGatewayConfig } from './config.js';
import { type Gateway, startGateway } from './gateway.js';
import { restoreGatewayHost } from './host/gateway-host.js';
import { hostProblems } from './host-check.js';

// One directory above both src/ and dist/.
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

const program = new Command()
  .name('onehost-gateway')
  .description(
    'Run a onehost gateway: cluster addresses routed into a TUN device, the message switch, VXLAN to the nodes, and the gRPC control plane.',
  )
  .version(version)
  .requiredOption('-c, --config <file>', 'gateway configuration (YAML; see docs/gateway.md)')
  .addOption(
    new Option('--log-level <level>', 'log level')
      .choices(['debug', 'info', 'warn', 'error'])
      .default('info'),
  )
  .option(
    '--check',
    'validate the configuration, and that the interfaces it names exist on this host, then exit (0 valid, 2 not)',
  )
  .option(
    '--restore',
    'undo the host configuration a crashed gateway left behind, say what was undone, then exit',
  )
  .showHelpAfterError();

program.parse();
const opts = program.opts<{ config: string; logLevel: string; check?: boolean; restore?: boolean }>();
const log = pino({ level: opts.logLevel, base: { app: 'onehost-gateway' } });

async function main(): Promise<number> {
  let cfg: GatewayConfig;
  try {
    cfg = await loadGatewayConfig(opts.config);
  } catch (e) {
    process.stderr.write(`onehost-gateway: ${e instanceof ConfigError ? e.message : (e as Error).message}\n`);
    return 2;
  }
  if (opts.restore) {
    const report = await restoreGatewayHost(cfg.host.state);
    process.stdout.write(
      report.found
        ? `restored ${report.undone} host change(s) recorded in ${cfg.host.state}\n`
        : `nothing to restore: no ${cfg.host.state}\n`,
    );
    return 0;
  }
  if (opts.check) {
    // The switch table is checked by building it, as startGateway does first.
    const { MessageSwitch } = await import('@onehost/switch');
    const { GatewaySwitch } = await import('./backend.js');
    try {
      new GatewaySwitch(new MessageSwitch(), cfg).setMembership([], []);
    } catch (e) {
      process.stderr.write(`onehost-gateway: ${opts.config}: ${(e as Error).message}\n`);
      return 2;
    }
    const problems = hostProblems(cfg);
    if (problems.length > 0) {
      for (const p of problems) process.stderr.write(`onehost-gateway: ${opts.config}: ${p}\n`);
      return 2;
    }
    process.stdout.write(`${opts.config}: valid\n`);
    return 0;
  }
  let gw: Gateway;
  try {
    gw = await startGateway(cfg, log, { configPath: opts.config });
  } catch (e) {
    if (e instanceof EtcdStoreError) {
      // etcd unreachable or refusing this gateway: said plainly, and a service manager tries again
      process.stderr.write(`onehost-gateway: ${e.message}\n`);
      return 1;
    }
    if (e instanceof ControlError) {
      process.stderr.write(`onehost-gateway: ${opts.config}: ${e.message}\n`);
      return 2;
    }
    log.fatal({ err: e }, 'could not start');
    return 1;
  }
  // SIGHUP (systemctl reload) reads the file again and swaps its switch part; a refused file is logged
  // with its field and the running configuration stays.
  const running = gw;
  process.on('SIGHUP', () => {
    void readFile(opts.config, 'utf8')
      .then((text) => running.reload(text, false, 'SIGHUP'))
      .catch((e: Error) => {
        // the gateway logged a refused file; a file that cannot be read is said here
        if (!(e instanceof ControlError))
          log.warn({ problem: e.message }, 'reload: cannot read the configuration');
      });
  });
  // SIGTERM and SIGINT stop cleanly (the host restored, the kernel data path removed); an operator's
  // `onehostctl gateway stop --keep-datapath` leaves the kernel forwarding for the next start to adopt.
  const how = await new Promise<{ keepDatapath: boolean }>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ signal }, 'stopping');
      resolve({ keepDatapath: false });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    void gw.stopped.then((s) => {
      log.info({ keepDatapath: s.keepDatapath }, 'stopping on an operator’s request');
      resolve(s);
    });
  });
  await gw.close(how);
  log.info(how.keepDatapath ? 'stopped; the kernel data path stays for the next start' : 'stopped');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    log.fatal({ err: e }, 'crashed');
    process.exit(1);
  },
);
