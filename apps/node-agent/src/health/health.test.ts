import { createSocket } from 'node:dgram';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HealthCheckConfig, HealthConfigError, parseHealthChecks } from './config.js';
import { probe } from './probe.js';
import { Streak } from './runner.js';

function problems(v: unknown): string[] {
  try {
    parseHealthChecks(v);
  } catch (e) {
    if (e instanceof HealthConfigError) return e.problems;
    throw e;
  }
  return [];
}

describe('health check configuration', () => {
  it('reads every kind with its defaults', () => {
    const [web, nfs, cmd] = parseHealthChecks([
      { name: 'web', kind: 'http', port: 80, path: '/healthz', covers: ['tcp/80'] },
      { name: 'nfs', kind: 'rpc', program: 'nfs', transport: 'tcp', covers: ['tcp/2049', 'udp/2049'] },
      { name: 'db', kind: 'command', run: ['/bin/true'], covers: ['tcp/5432'], intervalMs: 5000 },
    ]);
    expect(web).toMatchObject({
      expect: 200,
      intervalMs: 2000,
      timeoutMs: 1000,
      rise: 2,
      fall: 2,
      jitterMs: 200,
    });
    expect(nfs).toMatchObject({ program: 'nfs', transport: 'tcp' });
    expect(cmd).toMatchObject({ run: ['/bin/true'], jitterMs: 500 });
  });

  it('names every bad field', () => {
    expect(
      problems([
        { name: 'Web', kind: 'http', covers: ['tcp/80'], expect: 99, colour: 'red' },
        { name: 'a', kind: 'tcp', covers: [] },
        { name: 'b', kind: 'rpc', program: 'nis', covers: ['udp/111'], path: '/x' },
        { name: 'c', kind: 'command', covers: ['tcp/1'], intervalMs: 500, timeoutMs: 900 },
      ]),
    ).toEqual([
      'healthChecks[0].colour: unknown field',
      'healthChecks[0].name: must be a DNS label (lowercase letters, digits, -)',
      'healthChecks[0].expect: must be an integer from 100 to 599, got 99',
      'healthChecks[1].covers: must list the entries it covers, like tcp/80',
      'healthChecks[1].port: required for a tcp check',
      'healthChecks[2].path: only for http and https checks',
      'healthChecks[2].program: must be one of portmap, mount, nfs, got "nis"',
      'healthChecks[3].timeoutMs: must not be longer than intervalMs',
      'healthChecks[3].run: must be the command and its arguments, a list of strings',
    ]);
    expect(problems('x')).toEqual(['healthChecks: must be a list']);
    expect(parseHealthChecks(undefined)).toEqual([]);
  });

  it('never throws anything but its own error on any input', () => {
    fc.assert(
      fc.property(fc.anything(), (v) => {
        try {
          parseHealthChecks(Array.isArray(v) ? v : [v]);
        } catch (e) {
          expect(e).toBeInstanceOf(HealthConfigError);
        }
      }),
      { numRuns: 20_000 },
    );
  });
});

describe('rise and fall', () => {
  it('the first result decides; then it takes rise passes or fall failures in a row', () => {
    const s = new Streak(2, 3, 0);
    expect(s.healthy).toBe(false);
    expect(s.add({ ok: true, detail: '200' }, 1)).toBe(true);
    expect(s.add({ ok: false, detail: '503' }, 2)).toBe(false);
    expect(s.add({ ok: true, detail: '200' }, 3)).toBe(false); // the run of failures starts over
    expect(s.add({ ok: false, detail: '503' }, 4)).toBe(false);
    expect(s.add({ ok: false, detail: '503' }, 5)).toBe(false);
    expect(s.add({ ok: false, detail: '503' }, 6)).toBe(true);
    expect([s.healthy, s.detail, s.since]).toEqual([false, '503', 6]);
    expect(s.add({ ok: true, detail: '200' }, 7)).toBe(false);
    expect(s.add({ ok: true, detail: '200' }, 8)).toBe(true);
    expect(s.healthy).toBe(true);
  });
});

describe('probes against real sockets', () => {
  let http: Server;
  let httpPort: number;
  let closedPort: number;
  const rpc = createSocket('udp4');
  let rpcPort: number;
  beforeAll(async () => {
    http = createHttpServer((req, res) => res.writeHead(req.url === '/healthz' ? 200 : 503).end());
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    httpPort = (http.address() as AddressInfo).port;
    const tmp = createServer();
    await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
    closedPort = (tmp.address() as AddressInfo).port;
    await new Promise((r) => tmp.close(r));
    // an ONC RPC server's NULL: accepted, AUTH_NONE verifier, SUCCESS (RFC 5531 §9)
    rpc.on('message', (m, from) => {
      const reply = Buffer.alloc(24);
      m.copy(reply, 0, 0, 4);
      reply.writeUInt32BE(1, 4);
      rpc.send(reply, from.port, from.address);
    });
    await new Promise<void>((r) => rpc.bind(0, '127.0.0.1', r));
    rpcPort = rpc.address().port;
  });
  afterAll(async () => {
    await new Promise((r) => http.close(r));
    rpc.close();
  });
  const base: HealthCheckConfig = parseHealthChecks([
    { name: 'x', kind: 'tcp', port: 1, covers: ['tcp/1'] },
  ])[0]!;

  it('tcp: connected or refused', async () => {
    expect(await probe({ ...base, port: httpPort }, '127.0.0.1')).toEqual({ ok: true, detail: 'connected' });
    expect(await probe({ ...base, port: closedPort }, '127.0.0.1')).toEqual({
      ok: false,
      detail: 'connection refused',
    });
  });

  it('http: the expected status or not', async () => {
    const c = { ...base, kind: 'http' as const, port: httpPort, path: '/healthz' };
    expect(await probe(c, '127.0.0.1')).toEqual({ ok: true, detail: '200' });
    expect(await probe({ ...c, path: '/nope' }, '127.0.0.1')).toEqual({ ok: false, detail: '503' });
  });

  it('rpc NULL over UDP, and silence as a timeout', async () => {
    const c = { ...base, kind: 'rpc' as const, program: 'nfs' as const, port: rpcPort, timeoutMs: 300 };
    expect(await probe(c, '127.0.0.1')).toEqual({ ok: true, detail: 'NULL answered' });
    expect(await probe({ ...c, port: closedPort }, '127.0.0.1')).toMatchObject({ ok: false });
  });

  it('command: exit 0 or the exit code', async () => {
    const c = { ...base, kind: 'command' as const, run: ['/bin/sh', '-c', 'exit 3'] };
    expect(await probe(c, '127.0.0.1')).toEqual({ ok: false, detail: 'exit 3' });
    expect(await probe({ ...c, run: ['/bin/true'] }, '127.0.0.1')).toEqual({ ok: true, detail: 'exit 0' });
  });
});
