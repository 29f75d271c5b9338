import { readFileSync } from 'node:fs';
import { ROLES, type Role } from '@onehost/control/client';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { runCaInit, runCaIssue } from './ca-command.js';
import {
  runApply,
  runConns,
  runDrain,
  runExports,
  runGatewayDrain,
  runGatewayStatus,
  runGatewayStop,
  runGateways,
  runMembers,
  runRoutes,
} from './cluster-commands.js';
import { EXIT, type Output, runExplain } from './explain-command.js';
import { addGatewayOptions, type GatewayFlags } from './gateway.js';
import { runLiveExplain } from './live-explain.js';

function milliseconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0)
    throw new InvalidArgumentError('must be a non-negative number of milliseconds');
  return n;
}

function wholeNumber(min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
    return n;
  };
}

// A certificate name is the subject CN: a DNS label.
function certName(v: string): string {
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(v))
    throw new InvalidArgumentError('use 1-63 of a-z 0-9 and -, not starting or ending with -');
  return v;
}

function collect(v: string, previous: string[]): string[] {
  return [...previous, v];
}

const GATEWAY_HELP =
  '\nThe gateway and the operator certificate can also come from ONEHOST_GATEWAY, ONEHOST_CA, ONEHOST_CERT ' +
  'and ONEHOST_KEY.\nExit status: 0 done; 1 the gateway refused the call; 2 bad usage or unreadable files; ' +
  '3 cannot reach the gateway (no answer, refused connection, TLS failure).';

/** packageVersion reads the version from package.json (one directory above both src/ and dist/). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/**
 * usageExitCode is the exit code for what commander threw under exitOverride: 0 after help or the
 * version, 2 for a usage error (commander itself would exit 1). Rethrows anything else.
 */
export function usageExitCode(err: unknown): number {
  if (!(err instanceof CommanderError)) throw err;
  return err.exitCode === 0 ? 0 : EXIT.USAGE;
}

/**
 * buildProgram makes the onehostctl command line. `exit` receives each command's exit code (the
 * binary sets process.exitCode; tests capture it).
 */
export function buildProgram(io: Output, exit: (code: number) => void): Command {
  const program = new Command('onehostctl')
    .description(
      "onehost operator CLI: the cluster's members, switch table, connections, exports and gateways " +
        'over gRPC; drains; how the message switch routes a packet (live or offline); the cluster CA',
    )
    .version(packageVersion());

  addGatewayOptions(program.command('members'))
    .description('list the nodes the gateway knows: name, id, state, internal address, port block, last seen')
    .addHelpText('after', GATEWAY_HELP)
    .action(async (flags: GatewayFlags) => exit(await runMembers(flags, io)));

  addGatewayOptions(program.command('routes'))
    .description(
      "list the switch table: protocol/port → routing function and a summary of the function's options",
    )
    .addHelpText('after', GATEWAY_HELP)
    .action(async (flags: GatewayFlags) => exit(await runRoutes(flags, io)));

  addGatewayOptions(program.command('conns'))
    .description("list the gateway's connection table: client, entry, node, state, time until it expires")
    .option('--node <name>', 'only connections to this node')
    .option('--port <port>', "only this entry's port", wholeNumber(1, 65535))
    .addOption(new Option('--protocol <proto>', 'only this protocol').choices(['tcp', 'udp']))
    .option('--limit <n>', 'at most this many rows', wholeNumber(1, 100_000), 100)
    .addHelpText('after', GATEWAY_HELP)
    .action(
      async (
        flags: GatewayFlags & { node?: string; port?: number; protocol?: 'tcp' | 'udp'; limit: number },
      ) => exit(await runConns(flags, flags, io)),
    );

  for (const undrain of [false, true]) {
    addGatewayOptions(program.command(`${undrain ? 'undrain' : 'drain'} <node>`))
      .description(
        undrain
          ? 'lift a drain: the node gets new connections again'
          : 'drain a node: no new connections go to it, existing ones stay (until undrain; survives restarts)',
      )
      .addHelpText('after', GATEWAY_HELP)
      .action(async (node: string, flags: GatewayFlags) => exit(await runDrain(flags, node, undrain, io)));
  }

  addGatewayOptions(program.command('gateways'))
    .description(
      'list the gateways of the cluster (all registered in etcd; with the embedded store the one asked): ' +
        'name, control address, data path mode, announcement, health, applied store revision (and ' +
        'whether it is stale), switch table version, age',
    )
    .addHelpText('after', GATEWAY_HELP)
    .action(async (flags: GatewayFlags) => exit(await runGateways(flags, io)));

  const gateway = program
    .command('gateway')
    .description(
      'the gateway process: its data path (status), its life (stop), its drain flag (drain, undrain)',
    );
  addGatewayOptions(gateway.command('status'))
    .description(
      'show the data path: kernel or tun, the table version the kernel runs against the switch’s, the ' +
        'kernel’s last refusal, and per routing function the packets decided in the kernel and in user space',
    )
    .addHelpText('after', GATEWAY_HELP)
    .action(async (flags: GatewayFlags) => exit(await runGatewayStatus(flags, io)));
  addGatewayOptions(gateway.command('stop'))
    .description(
      'stop the gateway: by default a clean stop that removes its kernel state and restores the host; ' +
        'with --keep-datapath the kernel keeps forwarding established flows and the next start adopts them',
    )
    .option('--keep-datapath', 'leave the kernel data path in place (for an upgrade or a restart)', false)
    .addHelpText('after', GATEWAY_HELP)
    .action(async (flags: GatewayFlags & { keepDatapath: boolean }) =>
      exit(await runGatewayStop(flags, flags.keepDatapath, io)),
    );
  for (const undrain of [false, true]) {
    addGatewayOptions(gateway.command(`${undrain ? 'undrain' : 'drain'} <name>`))
      .description(
        undrain
          ? 'lift a gateway’s drain: it announces the cluster addresses again'
          : 'drain a gateway (any gateway may be asked): it withdraws its announcement of the cluster ' +
              'addresses and reports health "draining"; kept in the store until undrain',
      )
      .addHelpText('after', GATEWAY_HELP)
      .action(async (name: string, flags: GatewayFlags) =>
        exit(await runGatewayDrain(flags, name, undrain, io)),
      );
  }

  for (const dryRun of [true, false]) {
    addGatewayOptions(program.command(dryRun ? 'diff' : 'apply'))
      .description(
        dryRun
          ? 'show what apply -f would change: the entries (+ added, - removed, ~ changed) and fragments'
          : 'reload the gateway from its configuration file, changed: entries and fragments are swapped ' +
              'atomically, connections and kernel flows stay; other changed keys are refused (they take a ' +
              'restart), as is an invalid file (the field named); the running configuration then stays',
      )
      .requiredOption('-f, --file <gateway.yaml>', "the gateway's configuration file (YAML)")
      .addHelpText('after', GATEWAY_HELP)
      .action(async (flags: GatewayFlags & { file: string }) =>
        exit(await runApply(flags, flags.file, dryRun, io)),
      );
  }

  addGatewayOptions(program.command('exports'))
    .description(
      "list each node's MOUNT registration: exports and their ids, mountd ports, where handles keep the id",
    )
    .addHelpText('after', GATEWAY_HELP)
    .action(async (flags: GatewayFlags) => exit(await runExports(flags, io)));

  addGatewayOptions(program.command('explain'), false)
    .description(
      'tell which node a packet would reach and why (the Fig. 5 boxes it went through): live from the ' +
        "gateway's switch with --gateway, or offline from a switch table config with --config (one JSON " +
        'line per packet)',
    )
    .option('-c, --config <file.yaml>', 'offline: switch table config (see packages/switch/docs/config.md)')
    .addOption(
      new Option('-p, --packet <hex>', 'one IPv4 or IPv6 packet as hex (from the IP header on)').conflicts([
        'pcap',
        'flow',
      ]),
    )
    .addOption(
      new Option(
        '--pcap <file>',
        'offline: every IPv4 or IPv6 packet of a pcap/pcapng capture (Ethernet, raw IP or Linux cooked), in order',
      ).conflicts(['packet', 'flow']),
    )
    .addOption(
      new Option(
        '--flow <flow>',
        'a flow instead of bytes: "tcp|udp SRC:PORT DST:PORT [flags]" (IPv6 as [ADDR]:PORT), flags from syn,ack,fin,rst,psh,urg (tcp default syn)',
      ).conflicts(['packet', 'pcap']),
    )
    .option(
      '--now <ms>',
      'offline: clock in milliseconds since the epoch (default: now, or each packet’s capture time)',
      milliseconds,
    )
    .option('--dry-run', 'offline: leave the connection and flow tables untouched between packets', false)
    .option(
      '--update-tables',
      'live: let the packet change the tables as a real one would (default: dry run)',
      false,
    )
    .addHelpText(
      'after',
      '\nExamples:\n' +
        "  onehostctl explain --gateway 198.18.0.1:7443 --ca ca.pem --cert op.pem --key op-key.pem --flow 'tcp 203.0.113.5:40000 203.0.113.10:80 syn'\n" +
        '  onehostctl explain --config cluster.yaml --packet 4500003c...\n' +
        '  onehostctl explain --config cluster.yaml --pcap inbound.pcap\n' +
        '\nLive output is a short report, or with --json one JSON document shaped like an offline line.\n' +
        'The gateway and the certificate can also come from ONEHOST_GATEWAY, ONEHOST_CA, ONEHOST_CERT and ONEHOST_KEY\n' +
        '(--config wins over ONEHOST_GATEWAY).\n' +
        'Exit status: 0 done; 1 offline: no packet of the capture was IP, live: the gateway refused the call;\n' +
        '2 bad usage, config or file; 3 live: cannot reach the gateway.',
    )
    .action(
      async (
        opts: GatewayFlags & {
          config?: string;
          packet?: string;
          pcap?: string;
          flow?: string;
          now?: number;
          dryRun: boolean;
          updateTables?: boolean;
        },
        cmd: Command,
      ) => {
        const gatewayOnCommandLine =
          opts.gateway !== undefined && cmd.getOptionValueSource('gateway') === 'cli';
        if (opts.config !== undefined && gatewayOnCommandLine) {
          io.err('onehostctl explain: --config (offline) and --gateway (live) exclude each other');
          return exit(EXIT.USAGE);
        }
        if (opts.config !== undefined) {
          if (opts.updateTables) {
            io.err('onehostctl explain: --update-tables works live only (with --gateway)');
            return exit(EXIT.USAGE);
          }
          return exit(runExplain({ ...opts, config: opts.config }, io));
        }
        if (opts.gateway === undefined) {
          io.err('onehostctl explain: give --config <file.yaml> (offline) or --gateway <host:port> (live)');
          return exit(EXIT.USAGE);
        }
        const offlineOnly = [
          opts.pcap !== undefined && '--pcap',
          opts.now !== undefined && '--now',
          opts.dryRun && '--dry-run',
        ].filter((f) => f !== false);
        if (offlineOnly.length > 0) {
          io.err(`onehostctl explain: ${offlineOnly[0]} works offline only (with --config)`);
          return exit(EXIT.USAGE);
        }
        exit(await runLiveExplain(opts, { ...opts, updateTables: opts.updateTables === true }, io));
      },
    );

  const ca = program
    .command('ca')
    .description('make the cluster CA and the certificates of gateways, nodes and operators (PEM files)');
  ca.command('init')
    .description('create the cluster CA: <dir>/ca.pem and <dir>/ca-key.pem (owner-only)')
    .requiredOption('--dir <dir>', 'where to write (created when missing)')
    .option('--days <n>', 'validity in days (default 3650)', wholeNumber(1, 36_500))
    .option('--force', 'overwrite existing files', false)
    .addHelpText(
      'after',
      '\nExit status: 0 done; 1 a file exists (without --force) or cannot be written; 2 bad usage.',
    )
    .action(async (opts: { dir: string; days?: number; force: boolean }) => exit(await runCaInit(opts, io)));
  ca.command('issue')
    .description(
      "issue a certificate signed by <dir>'s CA: <dir>/<name>.pem and <dir>/<name>-key.pem (owner-only)",
    )
    .requiredOption('--dir <dir>', 'the directory of ca.pem and ca-key.pem, where the files go')
    .addOption(
      new Option('--role <role>', 'node, operator or gateway (certificate OU)')
        .choices(ROLES)
        .makeOptionMandatory(),
    )
    .requiredOption('--name <name>', 'node, operator or gateway name (certificate CN)', certName)
    .option(
      '--host <host>',
      'address or DNS name the holder serves (gateways), repeatable',
      collect,
      [] as string[],
    )
    .option('--days <n>', 'validity in days (default 365)', wholeNumber(1, 36_500))
    .option('--force', 'overwrite existing files', false)
    .addHelpText(
      'after',
      '\nExample: onehostctl ca issue --dir pki --role gateway --name gw --host 198.18.0.1\n' +
        'Exit status: 0 done; 1 a file exists (without --force) or cannot be written; 2 bad usage, or no CA in --dir.',
    )
    .action(
      async (opts: {
        dir: string;
        role: Role;
        name: string;
        host: string[];
        days?: number;
        force: boolean;
      }) => exit(await runCaIssue(opts, io)),
    );
  return program;
}
