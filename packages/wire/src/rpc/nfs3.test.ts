import { describe, expect, test } from 'vitest';
import { errorInfo, OK } from '../errors.js';
import { encodeCall, RPC_WRONG_PROCEDURE, RpcCallView } from './call.js';
import { EXPORT_ID, loadRpc, message } from './fixtures.test-util.js';
import { decodeMntReply } from './mount.js';
import {
  GANESHA_HANDLE_LAYOUT,
  GANESHA_HANDLE_VERSION,
  NFS_PROGRAM,
  NFS3_FHSIZE,
  NFS3_HANDLE_FIRST,
  NFS3_HANDLE_TOO_LONG,
  NFS3_NO_HANDLE,
  NFSPROC3_GETATTR,
  NFSPROC3_NULL,
  Nfs3HandleView,
  nfs3TakesHandle,
  readExportId,
} from './nfs3.js';
import { XDR_LENGTH_PAST_END, XDR_TRUNCATED, XdrReader, XdrWriter } from './xdr.js';

const HANDLE_CALLS = [
  'nfs3-access-call-tcp',
  'nfs3-fsinfo-call-tcp',
  'nfs3-getattr-call-tcp',
  'nfs3-lookup-call-tcp',
  'nfs3-read-call-tcp',
  'nfs3-readdirplus-call-tcp',
];

function rootHandle(): Buffer {
  const r = decodeMntReply(message(loadRpc('mnt-reply-tcp')));
  if (!r.ok) throw new Error(r.error.name);
  return Buffer.from(r.value.handle);
}

/** bound binds the call view and the handle view on a fixture, in place in the captured packet. */
function bound(name: string) {
  const f = loadRpc(name);
  const call = new RpcCallView();
  const fh = new Nfs3HandleView();
  expect(call.bind(f.packet, f.off, f.len)).toBe(OK);
  return { f, call, fh, code: fh.bindCall(call) };
}

describe('NFSv3 handles in the golden calls', () => {
  for (const name of HANDLE_CALLS) {
    test(`${name}: a ganesha handle carrying Export_Id ${EXPORT_ID}`, () => {
      const { f, call, fh, code } = bound(name);
      expect(code).toBe(OK);
      expect(fh.fhOff).toBe(call.argsOffset + 4);
      expect(fh.fhLen).toBe(rootHandle().length);
      expect(f.packet[fh.fhOff]).toBe(GANESHA_HANDLE_VERSION);
      expect(fh.exportId(2, 2, false)).toBe(EXPORT_ID);
      const { offset, length, littleEndian } = GANESHA_HANDLE_LAYOUT;
      expect(readExportId(f.packet, fh.fhOff, fh.fhLen, offset, length, littleEndian)).toBe(EXPORT_ID);
    });
  }

  test('nfs-ls works on the root handle that MNT returned', () => {
    for (const name of ['nfs3-fsinfo-call-tcp', 'nfs3-getattr-call-tcp', 'nfs3-readdirplus-call-tcp']) {
      expect(Buffer.from(bound(name).fh.handle()).equals(rootHandle()), name).toBe(true);
    }
  });

  test('LOOKUP: the directory handle, then the name right after it', () => {
    const { f, fh } = bound('nfs3-lookup-call-tcp');
    expect(Buffer.from(fh.handle()).equals(rootHandle())).toBe(true);
    const r = new XdrReader().reset(f.packet, fh.fhOff + fh.fhLen, f.off + f.len);
    r.string(255);
    expect(r.text()).toBe('hello.txt');
    expect(r.remaining).toBe(0);
  });

  test('READ: the file handle differs from the root but is in the same export; offset 0', () => {
    const { f, fh } = bound('nfs3-read-call-tcp');
    expect(Buffer.from(fh.handle()).equals(rootHandle())).toBe(false);
    expect(fh.exportId(2, 2, false)).toBe(EXPORT_ID);
    const r = new XdrReader().reset(f.packet, fh.fhOff + fh.fhLen, f.off + f.len);
    expect(r.u64Big()).toBe(0n);
    expect(r.u32()).toBeGreaterThanOrEqual('hello from onehost\n'.length);
    expect(r.remaining).toBe(0);
  });

  test('ACCESS is on the same handle as READ (the file nfs-cat opened)', () => {
    expect(
      Buffer.from(bound('nfs3-access-call-tcp').fh.handle()).equals(bound('nfs3-read-call-tcp').fh.handle()),
    ).toBe(true);
  });

  test('NULL has no handle', () => {
    expect(bound('nfs3-null-call-tcp').code).toBe(NFS3_NO_HANDLE);
    expect(errorInfo(NFS3_NO_HANDLE)?.name).toBe('nfs3_no_handle');
  });

  test('a MOUNT call is not an NFS call', () => {
    const call = RpcCallView.parse(message(loadRpc('mnt-call-tcp')));
    expect(call.ok && new Nfs3HandleView().bindCall(call.value)).toBe(RPC_WRONG_PROCEDURE);
    expect(call.ok && Nfs3HandleView.parse(call.value).ok).toBe(false);
  });
});

describe('the handle-first procedure table (RFC 1813 §3.3)', () => {
  test('every procedure 1-21 takes a handle first; NULL and unknown numbers do not', () => {
    expect(NFS3_HANDLE_FIRST.map(([p]) => p)).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    for (let p = 1; p <= 21; p++) expect(nfs3TakesHandle(p)).toBe(true);
    for (const p of [NFSPROC3_NULL, 22, 31, 32, -1, 2 ** 32 - 1, Number.NaN, 1.5]) {
      expect(nfs3TakesHandle(p), String(p)).toBe(false);
    }
  });
});

function nfsCall(args: Uint8Array, proc = NFSPROC3_GETATTR, vers = 3): RpcCallView {
  const call = new RpcCallView();
  if (call.bind(encodeCall({ xid: 1, prog: NFS_PROGRAM, vers, proc }, args)) !== OK)
    throw new Error('bad call');
  return call;
}

describe('Nfs3HandleView named malformed cases', () => {
  const fh = new Nfs3HandleView();
  test('handle over NFS3_FHSIZE, checked before the end', () => {
    const ok = new XdrWriter().opaque(new Uint8Array(NFS3_FHSIZE)).bytes();
    expect(fh.bindCall(nfsCall(ok))).toBe(OK);
    expect(fh.fhLen).toBe(NFS3_FHSIZE);
    expect(fh.bindCall(nfsCall(Uint8Array.of(0, 0, 0, 65)))).toBe(NFS3_HANDLE_TOO_LONG);
    expect(fh.bindCall(nfsCall(Uint8Array.of(0xff, 0xff, 0xff, 0xff)))).toBe(NFS3_HANDLE_TOO_LONG);
  });
  test('handle past the end, or no length at all', () => {
    expect(fh.bindCall(nfsCall(Uint8Array.of(0, 0, 0, 8, 0x43, 0, 0, 7)))).toBe(XDR_LENGTH_PAST_END);
    expect(fh.bindCall(nfsCall(Uint8Array.of(0, 0)))).toBe(XDR_TRUNCATED);
    expect(fh.bind(new Uint8Array(4), 2, 4)).toBe(XDR_TRUNCATED);
  });
  test('NFS version 2 or 4 is not this view', () => {
    expect(fh.bindCall(nfsCall(new Uint8Array(36), 1, 2))).toBe(RPC_WRONG_PROCEDURE);
    expect(fh.bindCall(nfsCall(new Uint8Array(36), 1, 4))).toBe(RPC_WRONG_PROCEDURE);
    expect(fh.bindCall(nfsCall(new Uint8Array(36), 22))).toBe(NFS3_NO_HANDLE);
  });
  test('an empty handle binds but has no export id', () => {
    expect(fh.bindCall(nfsCall(Uint8Array.of(0, 0, 0, 0)))).toBe(OK);
    expect([fh.fhLen, fh.exportId(2, 2, false)]).toEqual([0, -1]);
  });
});

describe('readExportId', () => {
  const buf = Uint8Array.of(0xee, 0x43, 0x00, 0x01, 0x02, 0x03, 0x04, 0xee);
  test('big- and little-endian, 1 to 4 bytes, at an offset inside the handle', () => {
    expect(readExportId(buf, 1, 6, 2, 2, false)).toBe(0x0102);
    expect(readExportId(buf, 1, 6, 2, 2, true)).toBe(0x0201);
    expect(readExportId(buf, 1, 6, 0, 1, false)).toBe(0x43);
    expect(readExportId(buf, 1, 6, 2, 4, false)).toBe(0x01020304);
    expect(readExportId(buf, 1, 6, 2, 4, true)).toBe(0x04030201);
    expect(readExportId(Uint8Array.of(0xff, 0xff, 0xff, 0xff), 0, 4, 0, 4, false)).toBe(0xffffffff);
  });
  test('-1 when the range leaves the handle or the buffer, or the width is not 1-4', () => {
    expect(readExportId(buf, 1, 6, 5, 2, false)).toBe(-1);
    expect(readExportId(buf, 1, 6, -1, 2, false)).toBe(-1);
    expect(readExportId(buf, 1, 6, 2, 0, false)).toBe(-1);
    expect(readExportId(buf, 1, 6, 0, 5, false)).toBe(-1);
    expect(readExportId(buf, 6, 6, 2, 2, false)).toBe(-1);
    expect(readExportId(buf, -4, 6, 2, 2, false)).toBe(-1);
    expect(readExportId(buf, 1, 6, Number.NaN, 2, false)).toBe(-1);
  });
});
