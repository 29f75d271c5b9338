// Loads the golden RPC packets in fixtures/rpc (see capture.sh there). Test-only: the skipping of the
// IPv4/TCP/UDP headers is plain arithmetic so that these tests do not depend on the packet views.
import { readdirSync, readFileSync } from 'node:fs';

const DIR = new URL('../../fixtures/rpc/', import.meta.url);

/** fixtureNames lists the fixture files without the .hex extension. */
export function fixtureNames(): string[] {
  return readdirSync(DIR)
    .filter((f) => f.endsWith('.hex'))
    .map((f) => f.slice(0, -4))
    .sort();
}

/** loadPacket returns the one IPv4 packet of a fixture; throws when the file holds anything else. */
export function loadPacket(name: string): Uint8Array {
  const lines = readFileSync(new URL(`${name}.hex`, DIR), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length !== 1 || !/^([0-9a-f]{2})+$/.test(lines[0]!))
    throw new Error(`${name}: expected one hex line`);
  return Uint8Array.from(Buffer.from(lines[0]!, 'hex'));
}

/** A fixture's transport payload and, inside it, the RPC message. */
export interface RpcFixture {
  name: string;
  packet: Uint8Array;
  transport: 'tcp' | 'udp';
  /** Offset and length of the TCP or UDP payload (for TCP: the record mark included). */
  payloadOff: number;
  payloadLen: number;
  /** Offset and length of the RPC message (after the record mark for TCP). */
  off: number;
  len: number;
}

/**
 * loadRpc locates the RPC message in a fixture by header arithmetic (IHL*4; TCP data offset*4 then a
 * 4-byte record mark, which must say "last fragment, rest of the segment"; or the 8-byte UDP header).
 */
export function loadRpc(name: string): RpcFixture {
  const p = loadPacket(name);
  const ihl = (p[0]! & 15) * 4;
  const total = (p[2]! << 8) | p[3]!;
  if (p[0]! >> 4 !== 4 || total !== p.length) throw new Error(`${name}: not a whole IPv4 packet`);
  if (p[9] === 6) {
    const payloadOff = ihl + (p[ihl + 12]! >> 4) * 4;
    const payloadLen = total - payloadOff;
    const mark = Buffer.from(p.buffer, p.byteOffset + payloadOff, 4).readUInt32BE(0);
    if (mark !== (0x80000000 | (payloadLen - 4)) >>> 0) throw new Error(`${name}: not one whole record`);
    return {
      name,
      packet: p,
      transport: 'tcp',
      payloadOff,
      payloadLen,
      off: payloadOff + 4,
      len: payloadLen - 4,
    };
  }
  if (p[9] === 17) {
    const payloadOff = ihl + 8;
    const payloadLen = total - payloadOff;
    return { name, packet: p, transport: 'udp', payloadOff, payloadLen, off: payloadOff, len: payloadLen };
  }
  throw new Error(`${name}: neither TCP nor UDP`);
}

/** message returns a copy of the fixture's RPC message alone (offset 0). */
export function message(f: RpcFixture): Uint8Array {
  return f.packet.slice(f.off, f.off + f.len);
}

/** The exported directory and the Export_Id that capture.sh configured in ganesha. */
export const EXPORT_PATH = '/srv/export';
export const EXPORT_ID = 7;
