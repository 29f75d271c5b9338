import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import {
  decodeGetportReply,
  encodeCall,
  encodePmapArgs,
  MOUNT_PROGRAM,
  MOUNT_V3,
  PMAP_IPPROTO_TCP,
  PMAP_IPPROTO_UDP,
  PMAP_PROGRAM,
  PMAP_V2,
  PMAPPROC_GETPORT,
  u32,
} from '@onehost/wire';

/** The node's own mountd ports per transport, as its rpcbind knows them (absent: not registered). */
export interface MountdPorts {
  tcp?: number;
  udp?: number;
}

export interface RpcbindOptions {
  host: string;
  port: number;
  /** per attempt; two attempts (default 300 ms). */
  timeoutMs?: number;
}

/**
 * getport asks a portmapper for a program's port over UDP (PMAP v2 GETPORT, RFC 1833 §3.2); 0 means not
 * registered. Rejects when no valid answer came after two attempts, or the answer is not a GETPORT
 * reply to our call.
 */
export async function getport(
  o: RpcbindOptions,
  prog: number,
  vers: number,
  prot: typeof PMAP_IPPROTO_TCP | typeof PMAP_IPPROTO_UDP,
): Promise<number> {
  const sock = createSocket('udp4');
  try {
    const timeoutMs = o.timeoutMs ?? 300;
    for (let attempt = 0; ; attempt++) {
      const xid = randomInt(1, 2 ** 32 - 1);
      const msg = encodeCall(
        { xid, prog: PMAP_PROGRAM, vers: PMAP_V2, proc: PMAPPROC_GETPORT },
        encodePmapArgs({ prog, vers, prot, port: 0 }),
      );
      const reply = await new Promise<Buffer | null>((resolve, reject) => {
        const timer = setTimeout(() => done(null), timeoutMs);
        const onMessage = (m: Buffer) => {
          if (m.length >= 4 && u32(m, 0) === xid) done(m); // stray or late replies are ignored
        };
        const onError = (err: Error) => {
          clearTimeout(timer);
          sock.off('message', onMessage);
          reject(err);
        };
        function done(m: Buffer | null) {
          clearTimeout(timer);
          sock.off('message', onMessage);
          sock.off('error', onError);
          resolve(m);
        }
        sock.on('message', onMessage);
        sock.once('error', onError);
        sock.send(msg, o.port, o.host);
      });
      if (reply !== null) {
        const r = decodeGetportReply(reply);
        if (!r.ok) throw new Error(`rpcbind at ${o.host}:${o.port}: bad GETPORT reply (${r.error.name})`);
        return r.value;
      }
      if (attempt === 1) throw new Error(`rpcbind at ${o.host}:${o.port} did not answer`);
    }
  } finally {
    sock.close();
  }
}

/**
 * mountdPorts asks the node's rpcbind where MOUNT v3 listens, per transport (nfs-ganesha picks random
 * ports unless MNT_Port is set, and new ones at each start). Rejects when rpcbind does not answer.
 */
export async function mountdPorts(o: RpcbindOptions): Promise<MountdPorts> {
  const [udp, tcp] = await Promise.all([
    getport(o, MOUNT_PROGRAM, MOUNT_V3, PMAP_IPPROTO_UDP),
    getport(o, MOUNT_PROGRAM, MOUNT_V3, PMAP_IPPROTO_TCP),
  ]);
  return { ...(tcp > 0 ? { tcp } : {}), ...(udp > 0 ? { udp } : {}) };
}
