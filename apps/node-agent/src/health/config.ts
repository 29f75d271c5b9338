/**
 * Health checks of the node's own services (docs: apps/node-agent/README.md, "Health checks"). One
 * schema, read once: every problem is reported with its field ("healthChecks[1].expect: …").
 */

export type CheckKind = 'tcp' | 'http' | 'https' | 'rpc' | 'command';
export type RpcProgram = 'portmap' | 'mount' | 'nfs';

export interface HealthCheckConfig {
  name: string;
  kind: CheckKind;
  /** switch entries it covers, "tcp/80": while it fails the node leaves their candidates */
  covers: string[];
  /** where to connect (tcp, http(s), rpc); default the node's internal address */
  address?: string;
  /** tcp, http(s); rpc: default 111 (portmap), 2049 (nfs), or rpcbind's answer (mount) */
  port?: number;
  /** http(s): path and the status that means healthy */
  path: string;
  expect: number;
  /** rpc: the program and transport of its NULL call (RFC 5531 §11: procedure 0 of every program) */
  program?: RpcProgram;
  transport: 'udp' | 'tcp';
  /** command: argv, run without a shell; exit 0 is healthy */
  run?: string[];
  intervalMs: number;
  timeoutMs: number;
  /** consecutive results that change the state (a check starts unhealthy until `rise` passes) */
  rise: number;
  fall: number;
  /** each interval is shortened or lengthened by up to this much, so checks of many nodes spread */
  jitterMs: number;
}

const KEYS = [
  'name',
  'kind',
  'covers',
  'address',
  'port',
  'path',
  'expect',
  'program',
  'transport',
  'run',
  'intervalMs',
  'timeoutMs',
  'rise',
  'fall',
  'jitterMs',
];
const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const COVER = /^(tcp|udp)\/([0-9]{1,5})$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
export const MAX_CHECKS = 32;

/** HealthConfigError lists every problem found, each naming its field. */
export class HealthConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

/**
 * parseHealthChecks reads the `healthChecks` list (`at` names it in messages). Throws HealthConfigError
 * naming each bad field; an absent list is no checks.
 */
export function parseHealthChecks(value: unknown, at = 'healthChecks'): HealthCheckConfig[] {
  if (value === undefined || value === null) return [];
  const problems: string[] = [];
  if (!Array.isArray(value)) throw new HealthConfigError([`${at}: must be a list`]);
  if (value.length > MAX_CHECKS) throw new HealthConfigError([`${at}: at most ${MAX_CHECKS} checks`]);
  const out: HealthCheckConfig[] = [];
  const names = new Set<string>();
  value.forEach((raw, i) => {
    const p = `${at}[${i}]`;
    const bad = (k: string, why: string): undefined => {
      problems.push(`${p}.${k}: ${why}`);
      return undefined;
    };
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      problems.push(`${p}: must be a mapping`);
      return;
    }
    const o = raw as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!KEYS.includes(k)) bad(k, 'unknown field');
    const int = (k: string, min: number, max: number, dflt?: number): number | undefined => {
      const v = o[k];
      if (v === undefined) return dflt;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
        return bad(k, `must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
      return v;
    };
    const name = typeof o.name === 'string' && NAME.test(o.name) ? o.name : undefined;
    if (name === undefined) bad('name', 'must be a DNS label (lowercase letters, digits, -)');
    else if (names.has(name)) bad('name', `${name} used twice`);
    else names.add(name);
    const kinds: CheckKind[] = ['tcp', 'http', 'https', 'rpc', 'command'];
    const kind = kinds.includes(o.kind as CheckKind) ? (o.kind as CheckKind) : undefined;
    if (kind === undefined) bad('kind', `must be one of ${kinds.join(', ')}, got ${JSON.stringify(o.kind)}`);
    const covers: string[] = [];
    if (!Array.isArray(o.covers) || o.covers.length === 0)
      bad('covers', 'must list the entries it covers, like tcp/80');
    else
      o.covers.forEach((c, j) => {
        const m = typeof c === 'string' ? COVER.exec(c) : null;
        if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535)
          bad(`covers[${j}]`, `not an entry like tcp/80: ${JSON.stringify(c)}`);
        else covers.push(c as string);
      });
    if (o.address !== undefined && (typeof o.address !== 'string' || !IPV4.test(o.address)))
      bad('address', `must be an IPv4 address, got ${JSON.stringify(o.address)}`);
    const port = int('port', 1, 65535);
    const intervalMs = int('intervalMs', 100, 3_600_000, 2000);
    const timeoutMs = int('timeoutMs', 10, 60_000, 1000);
    if (intervalMs !== undefined && timeoutMs !== undefined && timeoutMs > intervalMs)
      bad('timeoutMs', 'must not be longer than intervalMs');
    const c: Partial<HealthCheckConfig> = {
      name: name ?? '',
      covers,
      path: '/',
      expect: 200,
      transport: 'udp',
      intervalMs: intervalMs ?? 2000,
      timeoutMs: timeoutMs ?? 1000,
      rise: int('rise', 1, 100, 2) ?? 2,
      fall: int('fall', 1, 100, 2) ?? 2,
      jitterMs: int('jitterMs', 0, 60_000, Math.floor((intervalMs ?? 2000) / 10)) ?? 0,
    };
    if (kind !== undefined) c.kind = kind;
    if (typeof o.address === 'string') c.address = o.address;
    if (port !== undefined) c.port = port;
    if (kind === 'tcp' && port === undefined) bad('port', 'required for a tcp check');
    if (kind === 'http' || kind === 'https') {
      if (o.path !== undefined && (typeof o.path !== 'string' || !o.path.startsWith('/')))
        bad('path', 'must start with /');
      else if (typeof o.path === 'string') c.path = o.path;
      const expect = int('expect', 100, 599, 200);
      if (expect !== undefined) c.expect = expect;
    } else
      for (const k of ['path', 'expect']) if (o[k] !== undefined) bad(k, `only for http and https checks`);
    if (kind === 'rpc') {
      const programs: RpcProgram[] = ['portmap', 'mount', 'nfs'];
      if (!programs.includes(o.program as RpcProgram))
        bad('program', `must be one of ${programs.join(', ')}, got ${JSON.stringify(o.program)}`);
      else c.program = o.program as RpcProgram;
      if (o.transport !== undefined && o.transport !== 'udp' && o.transport !== 'tcp')
        bad('transport', `must be udp or tcp, got ${JSON.stringify(o.transport)}`);
      else if (o.transport === 'tcp') c.transport = 'tcp';
    } else for (const k of ['program', 'transport']) if (o[k] !== undefined) bad(k, 'only for rpc checks');
    if (kind === 'command') {
      if (
        !Array.isArray(o.run) ||
        o.run.length === 0 ||
        !o.run.every((a) => typeof a === 'string' && a !== '')
      )
        bad('run', 'must be the command and its arguments, a list of strings');
      else c.run = o.run as string[];
    } else if (o.run !== undefined) bad('run', 'only for command checks');
    out.push(c as HealthCheckConfig);
  });
  if (problems.length > 0) throw new HealthConfigError(problems);
  return out;
}

/** describeCheck says what a check checks, in words ("http /healthz", "rpc mount udp"). */
export function describeCheck(c: HealthCheckConfig): string {
  switch (c.kind) {
    case 'tcp':
      return `tcp ${c.port}`;
    case 'http':
    case 'https':
      return `${c.kind} ${c.path}`;
    case 'rpc':
      return `rpc ${c.program} ${c.transport}`;
    case 'command':
      return `command ${c.run?.[0] ?? ''}`;
  }
}
