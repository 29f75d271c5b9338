import { u32 } from '@onehost/wire';

/** RFC 5531 §8.2: opaque_auth bodies are at most 400 bytes. */
const MAX_AUTH = 400;
/** RFC 5531 §11: a TCP record mark is 4 bytes; the high bit marks the last fragment. */
const RECORD_MARK = 4;

/** Outcomes of `RpcCallReader.read`. */
export const RPC_READ = { OK: 0, NONE: 1, MALFORMED: 2 } as const;

/**
 * RpcCallReader finds the ONC RPC call header in a UDP payload or at the start of a TCP segment's first
 * record (RFC 5531 §9, §11) and the start of the procedure arguments, with every length capped before
 * use. Reusable, no allocation. `NONE`: nothing to read (an empty TCP segment); `MALFORMED`: bytes that
 * are not a call we can walk.
 *
 * (The switch reads only the header and the first argument; it keeps this small reader because the wire
 * package's RPC views were not exported when the switch was written.)
 */
export class RpcCallReader {
  prog = 0;
  vers = 0;
  proc = 0;
  xid = 0;
  /** argsOffset/argsEnd delimit the procedure arguments available in the buffer. */
  argsOffset = 0;
  argsEnd = 0;

  read(buf: Uint8Array, off: number, len: number, tcp: boolean): number {
    if (len === 0) return RPC_READ.NONE;
    let o = off;
    let end = off + len;
    if (tcp) {
      if (len < RECORD_MARK) return RPC_READ.MALFORMED;
      const fragLen = u32(buf, o) & 0x7fffffff;
      o += RECORD_MARK;
      // A record may continue in later segments: read what this one holds.
      if (o + fragLen < end) end = o + fragLen;
    }
    if (end - o < 40) return RPC_READ.MALFORMED;
    if (u32(buf, o + 4) !== 0 || u32(buf, o + 8) !== 2) return RPC_READ.MALFORMED;
    this.xid = u32(buf, o);
    this.prog = u32(buf, o + 12);
    this.vers = u32(buf, o + 16);
    this.proc = u32(buf, o + 20);
    const credLen = u32(buf, o + 28);
    if (credLen > MAX_AUTH) return RPC_READ.MALFORMED;
    const verf = o + 32 + ((credLen + 3) & ~3);
    if (verf + 8 > end) return RPC_READ.MALFORMED;
    const verfLen = u32(buf, verf + 4);
    if (verfLen > MAX_AUTH) return RPC_READ.MALFORMED;
    const args = verf + 8 + ((verfLen + 3) & ~3);
    if (args > end) return RPC_READ.MALFORMED;
    this.argsOffset = args;
    this.argsEnd = end;
    return RPC_READ.OK;
  }

  /**
   * opaqueAt reads a variable-length XDR opaque/string at `at` (length word, bytes) capped at `max`;
   * returns its length and leaves its first byte at at + 4, or -1 when it does not fit.
   */
  opaqueAt(buf: Uint8Array, at: number, max: number): number {
    if (at + 4 > this.argsEnd) return -1;
    const n = u32(buf, at);
    if (n > max || at + 4 + n > this.argsEnd) return -1;
    return n;
  }
}
