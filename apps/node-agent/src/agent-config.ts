import { readFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import { dirname, resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { parse as parseYaml } from 'yaml';
import type { NodeExport } from './ganesha-config.js';
import { type HealthCheckConfig, HealthConfigError, parseHealthChecks } from './health/config.js';
import type { HandleLayout } from './mount-registrar.js';

// The flags' value checks, shared by the command line and the configuration file: each throws
// commander's InvalidArgumentError with what it expected.

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];
// The name goes into the node certificate's CN, so it follows the certificate's rule (a DNS label).
const NODE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const IFNAME = /^[a-zA-Z0-9_.-]{1,15}$/;

export function hostPort(v: string): string {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s[\]]+):(\d{1,5})$/.exec(v);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535)
    throw new InvalidArgumentError('expected host:port, e.g. 198.18.0.1:7443');
  return v;
}

export function portNumber(v: string): number {
  const n = Number(v);
  if (!/^\d{1,5}$/.test(v) || n < 1 || n > 65535) throw new InvalidArgumentError('expected a port, 1-65535');
  return n;
}

export function portList(v: string): number[] {
  return v.split(',').map((p) => portNumber(p.trim()));
}

export function nodeName(v: string): string {
  if (!NODE_NAME.test(v))
    throw new InvalidArgumentError('use 1-63 of a-z 0-9 and -, not starting or ending with -');
  return v;
}

export function ipv4(v: string): string {
  if (!isIPv4(v)) throw new InvalidArgumentError('expected an IPv4 address, e.g. 198.18.0.11');
  return v;
}

export function ifname(v: string): string {
  if (!IFNAME.test(v)) throw new InvalidArgumentError('not an interface name (1-15 of a-z A-Z 0-9 _ . -)');
  return v;
}

export function exportSpec(v: string, previous: NodeExport[] | undefined): NodeExport[] {
  const m = /^(\/[^=]*)=(\d{1,10})$/.exec(v);
  if (!m || Number(m[2]) > 0xffffffff)
    throw new InvalidArgumentError('expected <absolute path>=<export id>, e.g. /srv/projects=11');
  return [...(previous ?? []), { path: m[1]!, exportId: Number(m[2]) }];
}

export function handleLayout(v: string): HandleLayout {
  const m = /^(\d{1,2}):([1-4]):(big|little)$/.exec(v);
  if (!m || Number(m[1]) + Number(m[2]) > 64)
    throw new InvalidArgumentError(
      'expected <offset>:<length 1-4>:<big|little> inside 64 bytes, e.g. 2:2:big',
    );
  return { offset: Number(m[1]), length: Number(m[2]), endian: m[3] as 'big' | 'little' };
}

export function milliseconds(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 50 || n > 3_600_000)
    throw new InvalidArgumentError('expected milliseconds from 50 to 3600000');
  return n;
}

export function collect(v: string, previous: string[] | undefined): string[] {
  if (!/^[a-z0-9][a-z0-9-]{0,31}$/.test(v)) throw new InvalidArgumentError('use 1-32 of a-z 0-9 and -');
  return [...(previous ?? []), v];
}

/** AgentFileConfig is what `--config` gives: every flag's key (camelCase), checked like the flag. */
export interface AgentFileConfig {
  gateway?: string;
  name?: string;
  ca?: string;
  cert?: string;
  key?: string;
  internalAddress?: string;
  interface?: string;
  stateFile?: string;
  vxlanDevice?: string;
  capability?: string[];
  serverName?: string;
  logLevel?: string;
  ganeshaConfig?: string;
  export?: NodeExport[];
  rpcbind?: string;
  handleLayout?: HandleLayout;
  mountCheckMs?: number;
  splicePort?: number;
  spliceCapture?: number[];
  splice?: boolean;
  spliceKernel?: boolean;
  /** the checks themselves, inline (the flag names a file holding such a list) */
  healthChecks?: HealthCheckConfig[];
}

/** AgentConfigError names the file and the key at fault: `agent.yaml: internalAddress: expected …`. */
export class AgentConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentConfigError';
  }
}

type Check = (v: unknown, at: string, base: string) => unknown;

/** checked runs a flag's check, its complaint naming the key (or list element) `at` */
function checked(at: string, parse: (v: string) => unknown, v: string): unknown {
  try {
    return parse(v);
  } catch (e) {
    throw new AgentConfigError(`${at}: ${(e as Error).message}`);
  }
}

const text =
  (parse?: (v: string) => unknown): Check =>
  (v, at) => {
    if (typeof v !== 'string' || v === '') throw new AgentConfigError(`${at}: expected a string`);
    return parse === undefined ? v : checked(at, parse, v);
  };
/** a file name, relative to the configuration file's directory */
const file: Check = (v, at, base) => resolve(base, text()(v, at, base) as string);
const integer =
  (parse: (v: string) => unknown): Check =>
  (v, at) => {
    if (typeof v !== 'number' && typeof v !== 'string')
      throw new AgentConfigError(`${at}: expected a number`);
    return checked(at, parse, String(v));
  };
const list =
  (each: Check): Check =>
  (v, at, base) => {
    if (!Array.isArray(v)) throw new AgentConfigError(`${at}: expected a list`);
    return v.map((x, i) => each(x, `${at}[${i}]`, base));
  };

const exportEntry: Check = (v, at) => {
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new AgentConfigError(`${at}: expected { path, exportId }`);
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (k !== 'path' && k !== 'exportId')
      throw new AgentConfigError(`${at}.${k}: unknown key (path, exportId)`);
  if (typeof o.path !== 'string') throw new AgentConfigError(`${at}.path: expected an absolute path`);
  if (typeof o.exportId !== 'number') throw new AgentConfigError(`${at}.exportId: expected a number`);
  try {
    return exportSpec(`${o.path}=${o.exportId}`, undefined)[0];
  } catch (e) {
    throw new AgentConfigError(`${at}: ${(e as Error).message}`);
  }
};

const KEYS: Record<keyof AgentFileConfig, Check> = {
  gateway: text(hostPort),
  name: text(nodeName),
  ca: file,
  cert: file,
  key: file,
  internalAddress: text(ipv4),
  interface: text(ifname),
  stateFile: file,
  vxlanDevice: text(ifname),
  capability: list(text((v) => collect(v, undefined)[0])),
  serverName: text(),
  logLevel: text((v) => {
    if (!LOG_LEVELS.includes(v)) throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(', ')}`);
    return v;
  }),
  ganeshaConfig: file,
  export: list(exportEntry),
  rpcbind: text(hostPort),
  handleLayout: text(handleLayout),
  mountCheckMs: integer(milliseconds),
  splicePort: integer(portNumber),
  spliceCapture: list(integer(portNumber)),
  splice: (v, at) => {
    if (typeof v !== 'boolean') throw new AgentConfigError(`${at}: expected true or false`);
    return v;
  },
  spliceKernel: (v, at) => {
    if (typeof v !== 'boolean') throw new AgentConfigError(`${at}: expected true or false`);
    return v;
  },
  healthChecks: (v, at) => {
    try {
      return parseHealthChecks(v, at);
    } catch (e) {
      if (e instanceof HealthConfigError) throw new AgentConfigError(e.message);
      throw e;
    }
  },
};

/** AGENT_CONFIG_KEYS are the keys a configuration file may have, in the order `--help` lists the flags. */
export const AGENT_CONFIG_KEYS = Object.keys(KEYS) as Array<keyof AgentFileConfig>;

/**
 * parseAgentConfig checks the text of an agent configuration file (YAML, a mapping of the flags' keys)
 * that lives at `path`: every key is checked as its flag is, file names are taken relative to the
 * file's directory. Throws AgentConfigError naming the file and the key.
 */
export function parseAgentConfig(source: string, path: string): AgentFileConfig {
  let doc: unknown;
  try {
    doc = parseYaml(source, { uniqueKeys: true, logLevel: 'error' });
  } catch (e) {
    throw new AgentConfigError(`${path}: not YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc))
    throw new AgentConfigError(`${path}: expected a mapping of keys (gateway, name, ca, …)`);
  const base = dirname(resolve(path));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    const check = KEYS[k as keyof AgentFileConfig];
    if (check === undefined) {
      const near = AGENT_CONFIG_KEYS.find((x) => x.toLowerCase() === k.toLowerCase().replace(/[-_]/g, ''));
      throw new AgentConfigError(
        `${path}: ${k}: unknown key${near !== undefined ? ` (did you mean ${near}?)` : ''}; keys: ${AGENT_CONFIG_KEYS.join(', ')}`,
      );
    }
    try {
      out[k] = check(v, `${path}: ${k}`, base);
    } catch (e) {
      if (e instanceof AgentConfigError) throw e;
      throw new AgentConfigError(`${path}: ${k}: ${(e as Error).message}`);
    }
  }
  return out as AgentFileConfig;
}

/** readAgentConfig reads and checks the file `--config` names. Throws AgentConfigError. */
export async function readAgentConfig(path: string): Promise<AgentFileConfig> {
  let source: string;
  try {
    source = await readFile(path, 'utf8');
  } catch (e) {
    throw new AgentConfigError(`${path}: cannot read it: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return parseAgentConfig(source, path);
}
