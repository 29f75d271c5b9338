import { u32 } from '../bytes.js';
import { type Checked, checked, defineError, OK } from '../errors.js';
import { RPC_WRONG_PROCEDURE, type RpcCallView } from './call.js';
import { beginAcceptedReply, RpcReplyView, successResults } from './reply.js';
import {
  pad4,
  XDR_LENGTH_OVER_CAP,
  XDR_LENGTH_PAST_END,
  XDR_TRUNCATED,
  XdrReader,
  XdrWriter,
} from './xdr.js';

/*
 * MOUNT protocol version 3 (RFC 1813 Appendix I), program 100005.
 *   mountres3 MOUNTPROC3_MNT(dirpath) = 1;    dirpath = string<MNTPATHLEN>, MNTPATHLEN = 1024
 *   void      MOUNTPROC3_UMNT(dirpath) = 3;
 *   exports   MOUNTPROC3_EXPORT(void) = 5;
 *   mountres3 = switch (mountstat3) { MNT3_OK: { fhandle3 fhandle<FHSIZE3>; int auth_flavors<> } }
 *   exports   = exportnode *;  exportnode { dirpath ex_dir; groups ex_groups; exports ex_next; }
 *   groups    = groupnode *;   groupnode  { name gr_name; groups gr_next; }     name = string<MNTNAMLEN>
 * Versions 1 and 2 (RFC 1094 Appendix A) take the same dirpath argument for MNT and UMNT.
 */
export const MOUNT_PROGRAM = 100005;
export const MOUNT_V3 = 3;
export const MOUNTPROC3_NULL = 0;
export const MOUNTPROC3_MNT = 1;
export const MOUNTPROC3_DUMP = 2;
export const MOUNTPROC3_UMNT = 3;
export const MOUNTPROC3_UMNTALL = 4;
export const MOUNTPROC3_EXPORT = 5;
export const MNTPATHLEN = 1024;
export const MNTNAMLEN = 255;
export const FHSIZE3 = 64;

/** mountstat3 (RFC 1813 Appendix I). */
export const MNT3_OK = 0;
export const MNT3ERR_PERM = 1;
export const MNT3ERR_NOENT = 2;
export const MNT3ERR_IO = 5;
export const MNT3ERR_ACCES = 13;
export const MNT3ERR_NOTDIR = 20;
export const MNT3ERR_INVAL = 22;
export const MNT3ERR_NAMETOOLONG = 63;
export const MNT3ERR_NOTSUPP = 10004;
export const MNT3ERR_SERVERFAULT = 10006;

export const MNT_DIRPATH_TOO_LONG = defineError(660, 'malformed', 'mnt_dirpath_too_long');
export const MNT_HANDLE_TOO_LONG = defineError(661, 'malformed', 'mnt_handle_too_long');
export const MNT_NAME_TOO_LONG = defineError(662, 'malformed', 'mnt_name_too_long');

const EMPTY = new Uint8Array(0);
const utf8 = new TextDecoder('utf-8');

/**
 * MntArgsView is a reusable view over the argument of MNT and UMNT (any version): one dirpath. After
 * `bind` returns OK the path bytes are buf[pathOff, pathOff+pathLen), inside [off, off+len).
 */
export class MntArgsView {
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;
  pathOff = 0;
  pathLen = 0;

  /**
   * bind reads `string dirpath<1024>` at buf[off, off+len): MNT_DIRPATH_TOO_LONG over the cap (checked
   * first), XDR_TRUNCATED / XDR_LENGTH_PAST_END when it does not fit. Never throws, never allocates.
   */
  bind(buf: Uint8Array, off: number, len: number): number {
    if (!(off >= 0 && len >= 0 && off + len <= buf.length) || len < 4) return XDR_TRUNCATED;
    const n = u32(buf, off);
    if (n > MNTPATHLEN) return MNT_DIRPATH_TOO_LONG;
    if (pad4(n) > len - 4) return XDR_LENGTH_PAST_END;
    this.buf = buf;
    this.off = off;
    this.len = len;
    this.pathOff = off + 4;
    this.pathLen = n;
    return OK;
  }

  /** bindCall binds the arguments of a bound MOUNT MNT/UMNT call; RPC_WRONG_PROCEDURE for other calls. */
  bindCall(call: RpcCallView): number {
    const proc = call.proc;
    if (call.prog !== MOUNT_PROGRAM || call.vers < 1 || call.vers > MOUNT_V3) return RPC_WRONG_PROCEDURE;
    if (proc !== MOUNTPROC3_MNT && proc !== MOUNTPROC3_UMNT) return RPC_WRONG_PROCEDURE;
    return this.bind(call.buf, call.argsOffset, call.argsLength);
  }

  /** dirpath decodes the path as UTF-8 (allocates; MNT is rare enough for that). */
  dirpath(): string {
    return utf8.decode(this.buf.subarray(this.pathOff, this.pathOff + this.pathLen));
  }

  /** parse binds a new view over a whole MNT/UMNT call message (allocates; off the hot path). */
  static parse(call: RpcCallView): Checked<MntArgsView> {
    const v = new MntArgsView();
    return checked(v.bindCall(call), v);
  }
}

/** The results of MNT (`mountres3`), decoded. */
export interface MntResult {
  status: number;
  /** The root file handle (a subarray of the message); empty unless status is MNT3_OK. */
  handle: Uint8Array;
  authFlavors: number[];
}

/**
 * encodeMntReply builds a SUCCESS reply to MNT: `status`, and for MNT3_OK the handle and the accepted
 * auth flavors (AUTH_SYS by default). Throws RangeError on a handle over FHSIZE3 bytes.
 */
export function encodeMntReply(
  xid: number,
  status: number,
  handle: Uint8Array = EMPTY,
  authFlavors: readonly number[] = [1],
): Uint8Array {
  const w = beginAcceptedReply(new XdrWriter(128), xid).u32(status);
  if (status === MNT3_OK) {
    w.opaque(handle, FHSIZE3).u32(authFlavors.length);
    for (const f of authFlavors) w.u32(f);
  }
  return w.bytes();
}

/** decodeMntReply reads a whole MNT reply message (allocates; off the hot path). */
export function decodeMntReply(msg: Uint8Array): Checked<MntResult> {
  const reply = new RpcReplyView();
  const value: MntResult = { status: -1, handle: EMPTY, authFlavors: [] };
  let code = successResults(reply, msg);
  if (code !== OK) return checked(code, value);
  const r = new XdrReader().reset(msg, reply.resultsOffset);
  value.status = r.u32();
  if (value.status === MNT3_OK) {
    if (r.opaque(FHSIZE3) >= 0) value.handle = msg.subarray(r.itemOff, r.itemOff + r.itemLen);
    // Each flavor is 4 bytes, so the count is bounded by what remains.
    const n = r.u32();
    if (r.error === OK && n * 4 > r.remaining) r.fail(XDR_LENGTH_PAST_END);
    for (let i = 0; i < n && r.error === OK; i++) value.authFlavors.push(r.u32());
  }
  code = r.error === XDR_LENGTH_OVER_CAP ? MNT_HANDLE_TOO_LONG : r.error;
  return checked(code, value);
}

/** One export in an EXPORT reply: its path and the groups (host names, netgroups) allowed to mount it. */
export interface ExportEntry {
  dir: string;
  groups: string[];
}

/**
 * encodeExportReply builds a SUCCESS reply to EXPORT listing `exports` (an XDR linked list: each entry
 * preceded by TRUE, the list ended by FALSE; RFC 4506 §4.19). Throws RangeError on a path over
 * MNTPATHLEN or a group name over MNTNAMLEN bytes.
 */
export function encodeExportReply(xid: number, exports: readonly ExportEntry[]): Uint8Array {
  const w = beginAcceptedReply(new XdrWriter(256), xid);
  for (const e of exports) {
    w.bool(true).string(e.dir, MNTPATHLEN);
    for (const g of e.groups) w.bool(true).string(g, MNTNAMLEN);
    w.bool(false);
  }
  return w.bool(false).bytes();
}

/** decodeExportReply reads a whole EXPORT reply message (allocates; off the hot path). */
export function decodeExportReply(msg: Uint8Array): Checked<ExportEntry[]> {
  const reply = new RpcReplyView();
  const list: ExportEntry[] = [];
  const code = successResults(reply, msg);
  if (code !== OK) return checked(code, list);
  const r = new XdrReader().reset(msg, reply.resultsOffset);
  // Every list step consumes at least 4 bytes, so the loops end with the data.
  while (r.bool()) {
    r.string(MNTPATHLEN);
    const entry: ExportEntry = { dir: r.text(), groups: [] };
    if (r.error !== OK) break;
    while (r.bool()) {
      r.string(MNTNAMLEN);
      entry.groups.push(r.text());
      if (r.error === XDR_LENGTH_OVER_CAP) r.error = MNT_NAME_TOO_LONG;
    }
    list.push(entry);
  }
  return checked(r.error === XDR_LENGTH_OVER_CAP ? MNT_DIRPATH_TOO_LONG : r.error, list);
}
