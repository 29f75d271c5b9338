import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import {
  encodeCall,
  encodeRecord,
  MOUNT_PROGRAM,
  MOUNT_V3,
  MSG_ACCEPTED,
  NFS_PROGRAM,
  NFS_V3,
  PMAP_IPPROTO_TCP,
  PMAP_IPPROTO_UDP,
  PMAP_PROGRAM,
  PMAP_V2,
  RpcReplyView,
  SUCCESS,
  u32,
} from '@onehost/wire';
import { getport } from '../rpcbind.js';
import type { HealthCheckConfig } from './config.js';

/** One probe's outcome: healthy or not, and in words why ("200", "connection refused"). */
export interface ProbeResult {
  ok: boolean;
  detail: string;
}

/** probe runs one check against `address` once; never rejects. */
export async function probe(c: HealthCheckConfig, defaultAddress: string): Promise<ProbeResult> {
  const address = c.address ?? defaultAddress;
  try {
    switch (c.kind) {
      case 'tcp':
        return await tcpConnect(address, c.port!, c.timeoutMs);
      case 'http':
      case 'https':
        return await httpGet(c, address);
      case 'rpc':
        return await rpcNull(c, address);
      case 'command':
        return await command(c.run!, c.timeoutMs);
    }
  } catch (e) {
    return { ok: false, detail: words(e) };
  }
}

function words(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ECONNRESET') return 'connection reset';
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'unreachable';
  return (e as Error).message ?? String(e);
}

function timeout(ms: number): ProbeResult {
  return { ok: false, detail: `no answer in ${ms} ms` };
}

function tcpConnect(host: string, port: number, ms: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const t = setTimeout(() => done(timeout(ms)), ms);
    function done(r: ProbeResult): void {
      clearTimeout(t);
      s.destroy();
      resolve(r);
    }
    s.once('connect', () => done({ ok: true, detail: 'connected' }));
    s.once('error', (e) => done({ ok: false, detail: words(e) }));
  });
}

function httpGet(c: HealthCheckConfig, host: string): Promise<ProbeResult> {
  const port = c.port ?? (c.kind === 'https' ? 443 : 80);
  const request = c.kind === 'https' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const req = request(
      // a health check proves the service answers; the certificate is the client's business
      {
        host,
        port,
        path: c.path,
        method: 'GET',
        timeout: c.timeoutMs,
        rejectUnauthorized: false,
        agent: false,
      },
      (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        done({ ok: code === c.expect, detail: String(code) });
      },
    );
    const t = setTimeout(() => done(timeout(c.timeoutMs)), c.timeoutMs);
    function done(r: ProbeResult): void {
      clearTimeout(t);
      req.destroy();
      resolve(r);
    }
    req.once('error', (e) => done({ ok: false, detail: words(e) }));
    req.end();
  });
}

const PROGRAMS = {
  portmap: { prog: PMAP_PROGRAM, vers: PMAP_V2, port: 111 },
  mount: { prog: MOUNT_PROGRAM, vers: MOUNT_V3, port: 0 },
  nfs: { prog: NFS_PROGRAM, vers: NFS_V3, port: 2049 },
} as const;

/** rpcNull calls procedure 0 (NULL) of the program: accepted with SUCCESS is healthy (RFC 5531 §9). */
async function rpcNull(c: HealthCheckConfig, host: string): Promise<ProbeResult> {
  const p = PROGRAMS[c.program!];
  let port = c.port ?? p.port;
  if (port === 0) {
    const prot = c.transport === 'tcp' ? PMAP_IPPROTO_TCP : PMAP_IPPROTO_UDP;
    port = await getport({ host, port: 111, timeoutMs: Math.max(50, c.timeoutMs / 2) }, p.prog, p.vers, prot);
    if (port === 0) return { ok: false, detail: `${c.program} not registered with rpcbind` };
  }
  const xid = randomInt(1, 2 ** 32 - 1);
  const call = encodeCall({ xid, prog: p.prog, vers: p.vers, proc: 0 });
  const reply =
    c.transport === 'udp'
      ? await udpCall(host, port, call, xid, c.timeoutMs)
      : await tcpCall(host, port, call, c.timeoutMs);
  if (typeof reply === 'string') return { ok: false, detail: reply };
  const view = new RpcReplyView();
  if (view.bind(reply) !== 0 || u32(reply, 0) !== xid) return { ok: false, detail: 'malformed reply' };
  if (view.replyStat !== MSG_ACCEPTED) return { ok: false, detail: 'call denied' };
  if (view.acceptStat !== SUCCESS) return { ok: false, detail: `accept_stat ${view.acceptStat}` };
  return { ok: true, detail: 'NULL answered' };
}

function udpCall(
  host: string,
  port: number,
  msg: Uint8Array,
  xid: number,
  ms: number,
): Promise<Uint8Array | string> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const t = setTimeout(() => done(`no answer in ${ms} ms`), ms);
    function done(r: Uint8Array | string): void {
      clearTimeout(t);
      s.close();
      resolve(r);
    }
    s.on('message', (m) => {
      if (m.length >= 4 && u32(m, 0) === xid) done(m);
    });
    s.once('error', (e) => done(words(e)));
    s.send(msg, port, host);
  });
}

/** tcpCall sends one record-marked call and reads one reply record (RFC 5531 §11), capped at 64 KiB. */
function tcpCall(host: string, port: number, msg: Uint8Array, ms: number): Promise<Uint8Array | string> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const t = setTimeout(() => done(`no answer in ${ms} ms`), ms);
    let got = Buffer.alloc(0);
    function done(r: Uint8Array | string): void {
      clearTimeout(t);
      s.destroy();
      resolve(r);
    }
    s.once('connect', () => s.write(encodeRecord(msg)));
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length > 65_536) return done('reply too large');
      if (got.length < 4) return;
      const len = u32(got, 0) & 0x7fffffff;
      if (got.length >= 4 + len) done(got.subarray(4, 4 + len));
    });
    s.once('error', (e) => done(words(e)));
    s.once('end', () => done('connection closed'));
  });
}

function command(argv: string[], ms: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { timeout: ms, maxBuffer: 64 * 1024 }, (err) => {
      if (err === null) return resolve({ ok: true, detail: 'exit 0' });
      if (err.killed) return resolve(timeout(ms));
      const code = (err as { code?: unknown }).code;
      resolve({ ok: false, detail: typeof code === 'number' ? `exit ${code}` : words(err) });
    });
  });
}
