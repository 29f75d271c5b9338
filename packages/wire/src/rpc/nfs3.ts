import { u32 } from '../bytes.js';
import { type Checked, checked, defineError, OK } from '../errors.js';
import { RPC_WRONG_PROCEDURE, type RpcCallView } from './call.js';
import { pad4, XDR_LENGTH_PAST_END, XDR_TRUNCATED } from './xdr.js';

/*
 * NFS version 3 (RFC 1813), program 100003 version 3. A file handle is `nfs_fh3 { opaque data<NFS3_FHSIZE> }`
 * with NFS3_FHSIZE = 64 (RFC 1813 §2.5). Every procedure except NULL starts its arguments with one
 * (RFC 1813 §3.3): directly (`nfs_fh3 object/file/dir/fsroot/symlink`) or as the `dir` of a diropargs3
 * (`what`, `where`, `from`). RENAME and LINK carry a second handle later on; the first decides the route.
 */
export const NFS_PROGRAM = 100003;
export const NFS_V3 = 3;
export const NFS_PORT = 2049;
export const NFS3_FHSIZE = 64;

export const NFSPROC3_NULL = 0;
export const NFSPROC3_GETATTR = 1;
export const NFSPROC3_SETATTR = 2;
export const NFSPROC3_LOOKUP = 3;
export const NFSPROC3_ACCESS = 4;
export const NFSPROC3_READLINK = 5;
export const NFSPROC3_READ = 6;
export const NFSPROC3_WRITE = 7;
export const NFSPROC3_CREATE = 8;
export const NFSPROC3_MKDIR = 9;
export const NFSPROC3_SYMLINK = 10;
export const NFSPROC3_MKNOD = 11;
export const NFSPROC3_REMOVE = 12;
export const NFSPROC3_RMDIR = 13;
export const NFSPROC3_RENAME = 14;
export const NFSPROC3_LINK = 15;
export const NFSPROC3_READDIR = 16;
export const NFSPROC3_READDIRPLUS = 17;
export const NFSPROC3_FSSTAT = 18;
export const NFSPROC3_FSINFO = 19;
export const NFSPROC3_PATHCONF = 20;
export const NFSPROC3_COMMIT = 21;

/** The procedures whose arguments start with an nfs_fh3, with the argument's name in RFC 1813 §3.3. */
export const NFS3_HANDLE_FIRST: ReadonlyArray<readonly [proc: number, name: string, firstArg: string]> = [
  [NFSPROC3_GETATTR, 'GETATTR', 'object'],
  [NFSPROC3_SETATTR, 'SETATTR', 'object'],
  [NFSPROC3_LOOKUP, 'LOOKUP', 'what.dir'],
  [NFSPROC3_ACCESS, 'ACCESS', 'object'],
  [NFSPROC3_READLINK, 'READLINK', 'symlink'],
  [NFSPROC3_READ, 'READ', 'file'],
  [NFSPROC3_WRITE, 'WRITE', 'file'],
  [NFSPROC3_CREATE, 'CREATE', 'where.dir'],
  [NFSPROC3_MKDIR, 'MKDIR', 'where.dir'],
  [NFSPROC3_SYMLINK, 'SYMLINK', 'where.dir'],
  [NFSPROC3_MKNOD, 'MKNOD', 'where.dir'],
  [NFSPROC3_REMOVE, 'REMOVE', 'object.dir'],
  [NFSPROC3_RMDIR, 'RMDIR', 'object.dir'],
  [NFSPROC3_RENAME, 'RENAME', 'from.dir'],
  [NFSPROC3_LINK, 'LINK', 'file'],
  [NFSPROC3_READDIR, 'READDIR', 'dir'],
  [NFSPROC3_READDIRPLUS, 'READDIRPLUS', 'dir'],
  [NFSPROC3_FSSTAT, 'FSSTAT', 'fsroot'],
  [NFSPROC3_FSINFO, 'FSINFO', 'fsroot'],
  [NFSPROC3_PATHCONF, 'PATHCONF', 'object'],
  [NFSPROC3_COMMIT, 'COMMIT', 'file'],
];

const handleFirst = new Uint8Array(32);
for (const [proc] of NFS3_HANDLE_FIRST) handleFirst[proc] = 1;

/** nfs3TakesHandle: the procedure's arguments start with a file handle (every one but NULL). */
export function nfs3TakesHandle(proc: number): boolean {
  return proc >= 0 && proc < handleFirst.length && handleFirst[proc] === 1;
}

/** The call is NFSv3 but its procedure carries no file handle (NULL, or a number RFC 1813 does not define). */
export const NFS3_NO_HANDLE = defineError(680, 'malformed', 'nfs3_no_handle');
/** The handle's length is over NFS3_FHSIZE (checked before the length is used). */
export const NFS3_HANDLE_TOO_LONG = defineError(681, 'malformed', 'nfs3_handle_too_long');

const EMPTY = new Uint8Array(0);

/**
 * Nfs3HandleView is a reusable view over the file handle that starts an NFSv3 call's arguments. After
 * `bind` returns OK the handle is buf[fhOff, fhOff+fhLen), inside [off, off+len); its length may be
 * anything from 0 to 64, so `exportId` checks its byte range against it.
 */
export class Nfs3HandleView {
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;
  fhOff = 0;
  fhLen = 0;

  /**
   * bind reads `nfs_fh3` at buf[off, off+len) (the arguments): NFS3_HANDLE_TOO_LONG over 64 bytes
   * (checked first), XDR_TRUNCATED / XDR_LENGTH_PAST_END when it does not fit. Never throws or allocates.
   */
  bind(buf: Uint8Array, off: number, len: number): number {
    if (!(off >= 0 && len >= 0 && off + len <= buf.length) || len < 4) return XDR_TRUNCATED;
    const n = u32(buf, off);
    if (n > NFS3_FHSIZE) return NFS3_HANDLE_TOO_LONG;
    if (pad4(n) > len - 4) return XDR_LENGTH_PAST_END;
    this.buf = buf;
    this.off = off;
    this.len = len;
    this.fhOff = off + 4;
    this.fhLen = n;
    return OK;
  }

  /**
   * bindCall binds the handle of a bound NFSv3 call: RPC_WRONG_PROCEDURE for another program or
   * version, NFS3_NO_HANDLE for NULL and unknown procedures.
   */
  bindCall(call: RpcCallView): number {
    if (call.prog !== NFS_PROGRAM || call.vers !== NFS_V3) return RPC_WRONG_PROCEDURE;
    if (!nfs3TakesHandle(call.proc)) return NFS3_NO_HANDLE;
    return this.bind(call.buf, call.argsOffset, call.argsLength);
  }

  /** exportId reads an export id from the handle (see `readExportId`); -1 when the range does not fit. */
  exportId(idOff: number, idLen: number, littleEndian: boolean): number {
    return readExportId(this.buf, this.fhOff, this.fhLen, idOff, idLen, littleEndian);
  }

  /** handle returns the handle bytes (a subarray, no copy; allocates the view object). */
  handle(): Uint8Array {
    return this.buf.subarray(this.fhOff, this.fhOff + this.fhLen);
  }

  /** parse binds a new view over a bound NFSv3 call (allocates; off the hot path). */
  static parse(call: RpcCallView): Checked<Nfs3HandleView> {
    const v = new Nfs3HandleView();
    return checked(v.bindCall(call), v);
  }
}

/**
 * readExportId reads the unsigned integer at bytes [idOff, idOff+idLen) of the handle at
 * buf[fhOff, fhOff+fhLen), in the given byte order. Returns -1 (never throws) when idLen is not 1-4 or the
 * range is not inside the handle: a short or foreign handle has no export id. Allocates nothing.
 */
export function readExportId(
  buf: Uint8Array,
  fhOff: number,
  fhLen: number,
  idOff: number,
  idLen: number,
  littleEndian: boolean,
): number {
  if (!(idLen >= 1 && idLen <= 4 && idOff >= 0 && idOff + idLen <= fhLen)) return -1;
  const start = fhOff + idOff;
  if (!(start >= 0 && start + idLen <= buf.length)) return -1;
  let v = 0;
  if (littleEndian) for (let i = idLen - 1; i >= 0; i--) v = v * 256 + buf[start + i]!;
  else for (let i = 0; i < idLen; i++) v = v * 256 + buf[start + i]!;
  return v;
}

/** Where a server keeps the export id in its handles (what a node agent registers). */
export interface HandleLayout {
  readonly offset: number;
  readonly length: number;
  readonly littleEndian: boolean;
}

/**
 * nfs-ganesha's NFSv3 handle (measured with 4.3, VFS FSAL): byte 0 is the handle version 0x43, bytes 2-3
 * hold the Export_Id big-endian.
 */
export const GANESHA_HANDLE_LAYOUT: HandleLayout = { offset: 2, length: 2, littleEndian: false };
/** The first byte of a ganesha NFSv3 handle (its handle format version). */
export const GANESHA_HANDLE_VERSION = 0x43;
