import { describe, expect, test } from 'vitest';
import { OK } from '../errors.js';
import { encodeCall, RPC_WRONG_PROCEDURE, RpcCallView } from './call.js';
import { loadRpc, message } from './fixtures.test-util.js';
import {
  decodeDumpReply,
  decodeGetportReply,
  encodeDumpReply,
  encodeGetportReply,
  encodePmapArgs,
  PMAP_IPPROTO_TCP,
  PMAP_IPPROTO_UDP,
  PMAP_PROGRAM,
  PMAPPROC_DUMP,
  PMAPPROC_GETPORT,
  PMAPPROC_SET,
  PmapMappingView,
} from './pmap.js';
import { encodeAcceptedReply, PROC_UNAVAIL, RPC_REPLY_NOT_SUCCESS } from './reply.js';
import { XDR_TRUNCATED } from './xdr.js';

const xidOf = (msg: Uint8Array) => Buffer.from(msg).readUInt32BE(0);

describe('PMAP GETPORT', () => {
  test('libnfs asks rpcbind for MOUNT v3 over TCP', () => {
    const f = loadRpc('pmap-getport-call-tcp');
    const call = new RpcCallView();
    expect(call.bind(f.packet, f.off, f.len)).toBe(OK);
    const m = new PmapMappingView();
    expect(m.bindCall(call)).toBe(OK);
    expect([m.prog, m.vers, m.prot, m.port]).toEqual([100005, 3, PMAP_IPPROTO_TCP, 0]);
    expect(m.off).toBe(call.argsOffset);
  });

  test('rpcbind answers 20048; the builder reproduces its reply byte for byte', () => {
    const msg = message(loadRpc('pmap-getport-reply-tcp'));
    const r = decodeGetportReply(msg);
    expect(r.ok && r.value).toBe(20048);
    expect(Buffer.from(encodeGetportReply(xidOf(msg), 20048)).equals(msg)).toBe(true);
  });

  test('round trip, port 0 meaning "not registered"', () => {
    const r = decodeGetportReply(encodeGetportReply(5, 0));
    expect(r.ok && r.value).toBe(0);
    const bad = decodeGetportReply(encodeAcceptedReply(5, PROC_UNAVAIL));
    expect(bad.ok === false && bad.error.code).toBe(RPC_REPLY_NOT_SUCCESS);
    const cut = decodeGetportReply(encodeGetportReply(5, 111).subarray(0, 26));
    expect(cut.ok === false && cut.error.code).toBe(XDR_TRUNCATED);
  });

  test('args round trip; truncated mapping; wrong procedure', () => {
    const args = encodePmapArgs({ prog: 100003, vers: 3, prot: PMAP_IPPROTO_UDP, port: 0 });
    const call = new RpcCallView();
    const m = new PmapMappingView();
    expect(call.bind(encodeCall({ xid: 1, prog: PMAP_PROGRAM, vers: 2, proc: PMAPPROC_GETPORT }, args))).toBe(
      OK,
    );
    expect(m.bindCall(call)).toBe(OK);
    expect([m.prog, m.vers, m.prot, m.port]).toEqual([100003, 3, PMAP_IPPROTO_UDP, 0]);
    expect(call.bind(encodeCall({ xid: 1, prog: PMAP_PROGRAM, vers: 2, proc: PMAPPROC_SET }, args))).toBe(OK);
    expect(m.bindCall(call)).toBe(OK);
    expect(
      call.bind(
        encodeCall({ xid: 1, prog: PMAP_PROGRAM, vers: 2, proc: PMAPPROC_GETPORT }, args.subarray(0, 12)),
      ),
    ).toBe(OK);
    expect(m.bindCall(call)).toBe(XDR_TRUNCATED);
    expect(call.bind(encodeCall({ xid: 1, prog: PMAP_PROGRAM, vers: 3, proc: PMAPPROC_GETPORT }, args))).toBe(
      OK,
    );
    expect(m.bindCall(call)).toBe(RPC_WRONG_PROCEDURE);
    expect(call.bind(encodeCall({ xid: 1, prog: PMAP_PROGRAM, vers: 2, proc: PMAPPROC_DUMP }))).toBe(OK);
    expect(m.bindCall(call)).toBe(RPC_WRONG_PROCEDURE);
    expect(PmapMappingView.parse(call).ok).toBe(false);
  });
});

describe('PMAP DUMP', () => {
  test('rpcinfo -p sends DUMP with no arguments', () => {
    const call = RpcCallView.parse(message(loadRpc('pmap-dump-call-tcp')));
    expect(call.ok && [call.value.prog, call.value.vers, call.value.proc, call.value.argsLength]).toEqual([
      PMAP_PROGRAM,
      2,
      PMAPPROC_DUMP,
      0,
    ]);
  });

  test('rpcbind lists portmapper, NFS 3 and MOUNT 1/3 on both transports; the builder matches', () => {
    const msg = message(loadRpc('pmap-dump-reply-tcp'));
    const r = decodeDumpReply(msg);
    if (!r.ok) throw new Error(r.error.name);
    expect(r.value).toHaveLength(12);
    expect(r.value).toContainEqual({ prog: 100003, vers: 3, prot: PMAP_IPPROTO_TCP, port: 2049 });
    expect(r.value).toContainEqual({ prog: 100003, vers: 3, prot: PMAP_IPPROTO_UDP, port: 2049 });
    expect(r.value).toContainEqual({ prog: 100005, vers: 3, prot: PMAP_IPPROTO_TCP, port: 20048 });
    expect(r.value).toContainEqual({ prog: 100000, vers: 2, prot: PMAP_IPPROTO_UDP, port: 111 });
    expect(Buffer.from(encodeDumpReply(xidOf(msg), r.value)).equals(msg)).toBe(true);
  });

  test('round trip, empty list, cut lists', () => {
    const list = [{ prog: 100005, vers: 3, prot: 6, port: 81 }];
    const r = decodeDumpReply(encodeDumpReply(9, list));
    expect(r.ok && r.value).toEqual(list);
    const empty = decodeDumpReply(encodeDumpReply(9, []));
    expect(empty.ok && empty.value).toEqual([]);
    const wire = encodeDumpReply(9, list);
    for (let n = 24; n < wire.length; n++) expect(decodeDumpReply(wire.subarray(0, n)).ok).toBe(false);
    const bad = decodeDumpReply(encodeAcceptedReply(9, PROC_UNAVAIL));
    expect(bad.ok === false && bad.error.code).toBe(RPC_REPLY_NOT_SUCCESS);
  });
});
