import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { identityOfCertificate } from '@onehost/control';
import { ipJson } from '@onehost/kernel';
import { Command, Option } from 'commander';
import { type Logger, pino } from 'pino';
import { parse as parseYaml } from 'yaml';
import {
  AgentConfigError,
  type AgentFileConfig,
  collect,
  exportSpec,
  handleLayout,
  hostPort,
  ifname,
  ipv4,
  LOG_LEVELS,
  milliseconds,
  nodeName,
  portList,
  portNumber,
  readAgentConfig,
} from './agent-config.js';
import type { DaemonOptions } from './daemon.js';
import { GaneshaConfigError, ganeshaExports, type NodeExport } from './ganesha-config.js';
import { type HealthCheckConfig, HealthConfigError, parseHealthChecks } from './health/config.js';
import { GANESHA_LAYOUT, type HandleLayout } from './mount-registrar.js';

/** UsageError is a bad flag or a file a flag names; the agent exits 2 with its message. */
export class UsageError extends Error {
  constructor(
    readonly flag: string,
    message: string,
  ) {
    super(`${flag}: ${message}`);
    this.name = 'UsageError';
  }
}

/** AgentArgs are the parsed flags of `onehost-agent`. */
export interface AgentArgs {
  gateway: string;
  name: string;
  ca: string;
  cert: string;
  key: string;
  internalAddress: string;
  interface?: string;
  stateFile?: string;
  vxlanDevice?: string;
  capability: string[];
  serverName?: string;
  logLevel: string;
  ganeshaConfig?: string;
  export?: NodeExport[];
  rpcbind: string;
  handleLayout: HandleLayout;
  mountCheckMs: number;
  splicePort: number;
  spliceCapture: number[];
  splice: boolean;
  spliceKernel: boolean;
  healthChecks?: string;
  /** the configuration file's checks, inline (used unless --health-checks names a file) */
  healthChecksInline?: HealthCheckConfig[];
  config?: string;
}

/**
 * buildAgentProgram makes the `onehost-agent` command line; `action` receives the parsed flags. Set
 * exitOverride on the result to keep commander from exiting.
 */
export function buildAgentProgram(action: (args: AgentArgs) => Promise<void>): Command {
  return new Command('onehost-agent')
    .description(
      'onehost node agent: join the cluster at the gateway over mutual TLS, configure this network ' +
        'namespace to accept the cluster addresses (VXLAN device, addresses on lo, routes, port range, ' +
        'nftables), keep the heartbeat going, join again after the gateway restarts or the stream breaks; ' +
        'on SIGTERM or SIGINT leave the cluster and restore everything it changed',
    )
    .version('0.1.0')
    .option(
      '--config <file.yaml>',
      'read the settings from a YAML file: every flag has a key (camelCase: internalAddress, stateFile, …; ' +
        'lists for repeatable flags, healthChecks inline); flags given here win',
    )
    .option('--gateway <host:port>', "the gateway's control plane (required)", hostPort)
    .option(
      '--name <node>',
      'this node\'s name, as in its certificate (CN, role "node") (required)',
      nodeName,
    )
    .option('--ca <file>', 'cluster CA certificate (PEM) (required)')
    .option('--cert <file>', "this node's certificate (PEM) (required)")
    .option('--key <file>', "this node's private key (PEM) (required)")
    .option(
      '--internal-address <ipv4>',
      "this node's address on the cluster interconnect (the VXLAN outer destination) (required)",
      ipv4,
    )
    .option(
      '--interface <name>',
      'the interface with the internal address (default: found by address)',
      ifname,
    )
    .option(
      '--state-file <file>',
      'record of every kernel change, for restore (default /run/onehost/agent-<node>.json)',
    )
    .option('--vxlan-device <name>', 'name of the VXLAN device to create (default onehost0)', ifname)
    .option('--capability <tag>', 'capability tag sent at join, repeatable (default vxlan)', collect)
    .option('--server-name <name>', "a name in the gateway's certificate, when the --gateway host is not one")
    .option(
      '--ganesha-config <file>',
      "register this node's NFSv3 exports from nfs-ganesha's configuration (EXPORT blocks: Export_Id, Path)",
    )
    .option(
      '--export <path=id>',
      'register an export MOUNT clients name <path> whose handles carry export id <id>; repeatable',
      exportSpec,
    )
    .option(
      '--rpcbind <host:port>',
      "the node's portmapper, asked for mountd's ports",
      hostPort,
      '127.0.0.1:111',
    )
    .option(
      '--handle-layout <offset:length:endian>',
      'where the NFS server keeps the export id in its file handles (nfs-ganesha 4.x: 2:2:big)',
      handleLayout,
      GANESHA_LAYOUT,
    )
    .option(
      '--mount-check-ms <ms>',
      "how often mountd's ports and the exports are checked and changes registered",
      milliseconds,
      1000,
    )
    .option(
      '--splice-port <port>',
      'UDP port on the internal address for TCP MOUNT/NFS connections the gateway hands over',
      portNumber,
      7472,
    )
    .option(
      '--splice-capture <ports>',
      "the node's own TCP ports whose connections the gateway hands over (NFS and the cluster's MOUNT " +
        "port; mountd's ports found through rpcbind are added), comma separated",
      portList,
      [2049, 20048],
    )
    .option('--no-splice', 'do not take TCP MOUNT/NFS connections over from the gateway')
    .option(
      '--no-splice-kernel',
      "shift the node's segments of spliced connections in the agent (its TUN) instead of a tc eBPF program",
    )
    .option(
      '--health-checks <file.yaml>',
      "checks of this node's services (a YAML file with a healthChecks list; README, Health checks)",
    )
    .addOption(new Option('--log-level <level>', 'pino log level').choices(LOG_LEVELS).default('info'))
    .addHelpText(
      'after',
      "\nWith --ganesha-config or --export the agent registers the node's MOUNT service with the gateway\n" +
        '(mountd ports from --rpcbind, exports, handle layout), again whenever they change, and restores\n' +
        'the source port of mountd\'s replies to the cluster\'s MOUNT port ({"msg":"mount registered"}).\n' +
        'Unless --no-splice it also takes over the TCP MOUNT and NFS connections the gateway hands it\n' +
        '(delayed binding, docs/splice.md): --splice-port, --splice-capture. Established segments are\n' +
        "shifted by a tc eBPF program (clang-built, attached to the node's Ethernet devices) unless\n" +
        '--no-splice-kernel; a killed agent leaves it shifting, and the next run adopts its flows.\n' +
        '\nLogs are pino JSON lines on stdout; {"msg":"ready"} once the node is configured and heartbeating.\n' +
        'One agent per node: a second one for a node that runs an agent (<state file>.lock) exits 1 at once,\n' +
        'changing nothing.\n' +
        'Exit status: 0 stopped by a signal, left and restored; 1 refused by the gateway, apply or restore\n' +
        'failed, or another agent runs this node; 2 bad flags or unreadable files.',
    )
    .action(async (opts: AgentArgs, cmd: Command) => {
      const file = opts.config === undefined ? {} : await configFile(opts.config);
      // a flag given on the command line wins over the file, the file over the flag's default
      const merged: Record<string, unknown> = { ...opts };
      for (const [k, v] of Object.entries(file))
        if (cmd.getOptionValueSource(k) !== 'cli')
          merged[k === 'healthChecks' ? 'healthChecksInline' : k] = v;
      for (const [key, flag] of REQUIRED)
        if (merged[key] === undefined)
          throw new UsageError(flag, `required: give ${flag}, or ${key} in the --config file`);
      const args = merged as unknown as AgentArgs;
      await action({ ...args, capability: args.capability ?? ['vxlan'] });
    });
}

const REQUIRED: Array<[keyof AgentArgs, string]> = [
  ['gateway', '--gateway'],
  ['name', '--name'],
  ['ca', '--ca'],
  ['cert', '--cert'],
  ['key', '--key'],
  ['internalAddress', '--internal-address'],
];

async function configFile(path: string): Promise<AgentFileConfig> {
  try {
    return await readAgentConfig(path);
  } catch (e) {
    if (e instanceof AgentConfigError) throw new UsageError('--config', e.message);
    throw e;
  }
}

async function readPem(flag: string, file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(flag, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (!text.includes('-----BEGIN ')) throw new UsageError(flag, `${file} is not a PEM file`);
  return text;
}

function keyMatches(certPem: string, keyPem: string): boolean {
  try {
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

/** interfaceOf names the interface that has `address`, or undefined. Throws when `ip` fails. */
async function interfaceOf(address: string): Promise<string | undefined> {
  const links = await ipJson<{ ifname: string; addr_info?: Array<{ family: string; local: string }> }>(
    'addr',
    'show',
  );
  return links.find((l) => (l.addr_info ?? []).some((a) => a.family === 'inet' && a.local === address))
    ?.ifname;
}

/**
 * prepareDaemon reads the PEM files, checks that the certificate is this node's, finds the internal
 * interface, and makes the logger. Throws a UsageError naming the flag at fault.
 */
export async function prepareDaemon(args: AgentArgs, logger?: Logger): Promise<DaemonOptions> {
  const [caPem, certPem, keyPem] = [
    await readPem('--ca', args.ca),
    await readPem('--cert', args.cert),
    await readPem('--key', args.key),
  ];
  let identity: ReturnType<typeof identityOfCertificate>;
  try {
    identity = identityOfCertificate(certPem);
  } catch (err) {
    throw new UsageError('--cert', `${args.cert}: ${(err as Error).message}`);
  }
  if (!keyMatches(certPem, keyPem)) {
    throw new UsageError('--key', `${args.key} is not the private key of ${args.cert} (--cert)`);
  }
  if (identity.role !== 'node' || identity.name !== args.name) {
    throw new UsageError(
      '--cert',
      `${args.cert} is the certificate of ${identity.role} ${identity.name}, not of node ${args.name} (--name)`,
    );
  }
  let mount: DaemonOptions['mount'];
  if (args.ganeshaConfig !== undefined || (args.export ?? []).length > 0) {
    if (args.ganeshaConfig !== undefined) {
      try {
        await ganeshaExports(args.ganeshaConfig);
      } catch (err) {
        if (err instanceof GaneshaConfigError) throw new UsageError('--ganesha-config', err.message);
        throw err;
      }
    }
    const rpcbind = /^(.*):(\d+)$/.exec(args.rpcbind)!;
    mount = {
      rpcbind: { host: rpcbind[1]!, port: Number(rpcbind[2]) },
      ...(args.ganeshaConfig !== undefined ? { ganeshaConfig: args.ganeshaConfig } : {}),
      exports: args.export ?? [],
      handleLayout: args.handleLayout,
      intervalMs: args.mountCheckMs,
    };
  }
  let healthChecks: HealthCheckConfig[] = args.healthChecksInline ?? [];
  if (args.healthChecks !== undefined) {
    let text: string;
    try {
      text = await readFile(args.healthChecks, 'utf8');
    } catch (err) {
      throw new UsageError(
        '--health-checks',
        `cannot read ${args.healthChecks}: ${(err as NodeJS.ErrnoException).code}`,
      );
    }
    try {
      const doc = parseYaml(text) as { healthChecks?: unknown } | null;
      healthChecks = parseHealthChecks(doc?.healthChecks, `${args.healthChecks}: healthChecks`);
    } catch (err) {
      if (err instanceof HealthConfigError) throw new UsageError('--health-checks', err.message);
      throw new UsageError('--health-checks', `${args.healthChecks}: ${(err as Error).message}`);
    }
  }
  const found = await interfaceOf(args.internalAddress);
  if (found === undefined) {
    throw new UsageError('--internal-address', `${args.internalAddress} is not an address of any interface`);
  }
  if (args.interface !== undefined && args.interface !== found) {
    throw new UsageError(
      '--interface',
      `${args.internalAddress} (--internal-address) is on ${found}, not on ${args.interface}`,
    );
  }
  return {
    gateway: args.gateway,
    ...(healthChecks.length > 0 ? { healthChecks } : {}),
    ...(mount !== undefined ? { mount } : {}),
    ...(mount !== undefined && args.splice
      ? { splice: { port: args.splicePort, capturePorts: args.spliceCapture, kernel: args.spliceKernel } }
      : {}),
    tls: {
      caPem,
      certPem,
      keyPem,
      ...(args.serverName !== undefined ? { serverName: args.serverName } : {}),
    },
    local: {
      nodeName: args.name,
      internalAddress: args.internalAddress,
      interface: found,
      stateFile: args.stateFile ?? `/run/onehost/agent-${args.name}.json`,
      ...(args.vxlanDevice !== undefined ? { vxlanDevice: args.vxlanDevice } : {}),
    },
    capabilities: args.capability,
    logger: logger ?? pino({ level: args.logLevel, base: { pid: process.pid, node: args.name } }),
  };
}
