import { describe, expect, test } from 'vitest';
import { errorInfo, OK } from '../errors.js';
import { encodeCall, RPC_WRONG_PROCEDURE, RpcCallView } from './call.js';
import { EXPORT_ID, EXPORT_PATH, loadRpc, message } from './fixtures.test-util.js';
import {
  decodeExportReply,
  decodeMntReply,
  encodeExportReply,
  encodeMntReply,
  MNT_DIRPATH_TOO_LONG,
  MNT_HANDLE_TOO_LONG,
  MNT_NAME_TOO_LONG,
  MNT3_OK,
  MNT3ERR_ACCES,
  MNTPATHLEN,
  MntArgsView,
  MOUNT_PROGRAM,
  MOUNTPROC3_EXPORT,
  MOUNTPROC3_MNT,
  MOUNTPROC3_UMNT,
} from './mount.js';
import { GANESHA_HANDLE_LAYOUT, readExportId } from './nfs3.js';
import { encodeAcceptedReply, encodeAuthErrorReply, PROG_UNAVAIL, RPC_REPLY_NOT_SUCCESS } from './reply.js';
import { XDR_LENGTH_PAST_END, XDR_TRUNCATED, XdrWriter } from './xdr.js';

function mntCall(args: Uint8Array, proc = MOUNTPROC3_MNT, vers = 3): RpcCallView {
  const call = new RpcCallView();
  if (call.bind(encodeCall({ xid: 1, prog: MOUNT_PROGRAM, vers, proc }, args)) !== OK)
    throw new Error('bad call');
  return call;
}

describe('MNT dirpath from the golden calls', () => {
  for (const t of ['tcp', 'udp']) {
    test(`mnt-call-${t}: the dirpath is the exported path, zero-copy and as a string`, () => {
      const f = loadRpc(`mnt-call-${t}`);
      const call = new RpcCallView();
      expect(call.bind(f.packet, f.off, f.len)).toBe(OK);
      const mnt = new MntArgsView();
      expect(mnt.bindCall(call)).toBe(OK);
      expect(mnt.pathOff).toBe(call.argsOffset + 4);
      expect(mnt.pathLen).toBe(EXPORT_PATH.length);
      expect(Buffer.from(f.packet.subarray(mnt.pathOff, mnt.pathOff + mnt.pathLen)).toString('latin1')).toBe(
        EXPORT_PATH,
      );
      expect(mnt.dirpath()).toBe(EXPORT_PATH);
      const parsed = MntArgsView.parse(call);
      expect(parsed.ok && parsed.value.dirpath()).toBe(EXPORT_PATH);
    });
  }

  test('EXPORT is not a dirpath call', () => {
    const call = RpcCallView.parse(message(loadRpc('mnt-export-call-tcp')));
    expect(call.ok && new MntArgsView().bindCall(call.value)).toBe(RPC_WRONG_PROCEDURE);
    const nfs = RpcCallView.parse(message(loadRpc('nfs3-getattr-call-tcp')));
    expect(nfs.ok && new MntArgsView().bindCall(nfs.value)).toBe(RPC_WRONG_PROCEDURE);
  });
});

describe('MNT reply from ganesha', () => {
  for (const t of ['tcp', 'udp']) {
    test(`mnt-reply-${t}: MNT3_OK, a ganesha handle with Export_Id ${EXPORT_ID}, AUTH_SYS`, () => {
      const msg = message(loadRpc(`mnt-reply-${t}`));
      const r = decodeMntReply(msg);
      if (!r.ok) throw new Error(r.error.name);
      const { status, handle, authFlavors } = r.value;
      expect(status).toBe(MNT3_OK);
      expect(handle[0]).toBe(0x43);
      expect(readExportId(handle, 0, handle.length, 2, 2, false)).toBe(EXPORT_ID);
      const { offset, length, littleEndian } = GANESHA_HANDLE_LAYOUT;
      expect(readExportId(handle, 0, handle.length, offset, length, littleEndian)).toBe(EXPORT_ID);
      expect(authFlavors).toEqual([1]);
      // The builder reproduces ganesha's reply byte for byte.
      const xid = Buffer.from(msg).readUInt32BE(0);
      expect(Buffer.from(encodeMntReply(xid, MNT3_OK, handle, authFlavors)).equals(msg)).toBe(true);
    });
  }

  test('TCP and UDP mounts of the same export get the same root handle', () => {
    const tcp = decodeMntReply(message(loadRpc('mnt-reply-tcp')));
    const udp = decodeMntReply(message(loadRpc('mnt-reply-udp')));
    expect(tcp.ok && udp.ok && Buffer.from(tcp.value.handle).equals(udp.value.handle)).toBe(true);
  });

  test('an error status carries no handle', () => {
    const msg = encodeMntReply(3, MNT3ERR_ACCES, Uint8Array.of(1, 2, 3));
    expect(msg.length).toBe(28);
    const r = decodeMntReply(msg);
    expect(r.ok && r.value).toEqual({ status: MNT3ERR_ACCES, handle: new Uint8Array(0), authFlavors: [] });
  });

  test('malformed replies', () => {
    expect(() => encodeMntReply(1, MNT3_OK, new Uint8Array(65))).toThrow(RangeError);
    const tooLong = new XdrWriter().u32(MNT3_OK).u32(65).raw(new Uint8Array(68)).u32(0).bytes();
    const r1 = decodeMntReply(encodeAcceptedReply(1, 0, tooLong));
    expect(r1.ok === false && r1.error.code).toBe(MNT_HANDLE_TOO_LONG);
    // A flavor count larger than what follows is refused before looping.
    const liar = new XdrWriter().u32(MNT3_OK).u32(0).u32(0x40000000).u32(1).bytes();
    const r2 = decodeMntReply(encodeAcceptedReply(1, 0, liar));
    expect(r2.ok === false && r2.error.code).toBe(XDR_LENGTH_PAST_END);
    const r3 = decodeMntReply(encodeAcceptedReply(1, PROG_UNAVAIL));
    expect(r3.ok === false && r3.error.code).toBe(RPC_REPLY_NOT_SUCCESS);
    const r4 = decodeMntReply(encodeAuthErrorReply(1, 1));
    expect(r4.ok).toBe(false);
    const r5 = decodeMntReply(Uint8Array.of(0, 0, 0, 1, 0, 0, 0, 0));
    expect(r5.ok).toBe(false);
  });
});

describe('EXPORT reply', () => {
  test('ganesha lists the export with no groups; the builder reproduces it byte for byte', () => {
    const msg = message(loadRpc('mnt-export-reply-tcp'));
    const r = decodeExportReply(msg);
    expect(r.ok && r.value).toEqual([{ dir: EXPORT_PATH, groups: [] }]);
    const xid = Buffer.from(msg).readUInt32BE(0);
    expect(Buffer.from(encodeExportReply(xid, [{ dir: EXPORT_PATH, groups: [] }])).equals(msg)).toBe(true);
  });

  test('round trip with groups, and an empty list', () => {
    const list = [
      { dir: '/data', groups: ['203.0.113.0/24', 'admins'] },
      { dir: '/home/ü', groups: [] },
      { dir: '/x', groups: ['*'] },
    ];
    const r = decodeExportReply(encodeExportReply(77, list));
    expect(r.ok && r.value).toEqual(list);
    const empty = decodeExportReply(encodeExportReply(78, []));
    expect(empty.ok && empty.value).toEqual([]);
  });

  test('caps: path over MNTPATHLEN, group over MNTNAMLEN, list cut short', () => {
    expect(() => encodeExportReply(1, [{ dir: 'x'.repeat(MNTPATHLEN + 1), groups: [] }])).toThrow(RangeError);
    expect(() => encodeExportReply(1, [{ dir: '/', groups: ['g'.repeat(256)] }])).toThrow(RangeError);
    const longDir = new XdrWriter()
      .bool(true)
      .string('x'.repeat(MNTPATHLEN + 1))
      .bool(false)
      .bool(false)
      .bytes();
    const r1 = decodeExportReply(encodeAcceptedReply(1, 0, longDir));
    expect(r1.ok === false && r1.error.code).toBe(MNT_DIRPATH_TOO_LONG);
    const longName = new XdrWriter().bool(true).string('/').bool(true).string('g'.repeat(256)).bytes();
    const r2 = decodeExportReply(encodeAcceptedReply(1, 0, longName));
    expect(r2.ok === false && r2.error.code).toBe(MNT_NAME_TOO_LONG);
    const cut = encodeExportReply(1, [{ dir: '/a', groups: ['b'] }]);
    for (let n = 24; n < cut.length; n++) {
      expect(decodeExportReply(cut.subarray(0, n)).ok, `cut at ${n}`).toBe(false);
    }
    const r3 = decodeExportReply(encodeAcceptedReply(1, PROG_UNAVAIL));
    expect(r3.ok === false && r3.error.code).toBe(RPC_REPLY_NOT_SUCCESS);
  });
});

describe('MntArgsView named malformed cases', () => {
  const mnt = new MntArgsView();
  const path = (n: number) => new XdrWriter().string('/'.padEnd(n, 'p'), 4096).bytes();

  test('dirpath of exactly MNTPATHLEN bytes is fine; one more is malformed, checked before the end', () => {
    expect(mnt.bindCall(mntCall(path(MNTPATHLEN)))).toBe(OK);
    expect(mnt.dirpath().length).toBe(MNTPATHLEN);
    expect(mnt.bindCall(mntCall(path(MNTPATHLEN + 1)))).toBe(MNT_DIRPATH_TOO_LONG);
    expect(mnt.bindCall(mntCall(Uint8Array.of(0xff, 0xff, 0xff, 0xff)))).toBe(MNT_DIRPATH_TOO_LONG);
    expect(errorInfo(MNT_DIRPATH_TOO_LONG)?.name).toBe('mnt_dirpath_too_long');
  });

  test('dirpath length past the end, and a missing length', () => {
    expect(mnt.bindCall(mntCall(Uint8Array.of(0, 0, 0, 8, 0x2f, 0x61)))).toBe(XDR_LENGTH_PAST_END);
    expect(mnt.bindCall(mntCall(Uint8Array.of(0, 0, 0)))).toBe(XDR_TRUNCATED);
    expect(mnt.bindCall(mntCall(new Uint8Array(0)))).toBe(XDR_TRUNCATED);
    expect(mnt.bind(new Uint8Array(8), 6, 4)).toBe(XDR_TRUNCATED);
  });

  test('UMNT and MOUNT v1 take the same argument; other programs and procedures do not', () => {
    expect(mnt.bindCall(mntCall(path(5), MOUNTPROC3_UMNT))).toBe(OK);
    expect(mnt.bindCall(mntCall(path(5), MOUNTPROC3_MNT, 1))).toBe(OK);
    expect(mnt.bindCall(mntCall(path(5), MOUNTPROC3_MNT, 4))).toBe(RPC_WRONG_PROCEDURE);
    expect(mnt.bindCall(mntCall(path(5), MOUNTPROC3_EXPORT))).toBe(RPC_WRONG_PROCEDURE);
    expect(MntArgsView.parse(mntCall(path(5), MOUNTPROC3_EXPORT)).ok).toBe(false);
  });
});
