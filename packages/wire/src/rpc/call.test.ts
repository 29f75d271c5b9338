import { describe, expect, test } from 'vitest';
import { errorInfo, OK } from '../errors.js';
import {
  AUTH_NONE,
  AUTH_SYS,
  encodeAuthSys,
  encodeCall,
  MAX_AUTH_BYTES,
  RPC_BAD_RPCVERS,
  RPC_CALL_MIN,
  RPC_CALL_TRUNCATED,
  RPC_CRED_TOO_LONG,
  RPC_NOT_CALL,
  RPC_VERF_TOO_LONG,
  RpcCallView,
} from './call.js';
import { fixtureNames, loadRpc, message } from './fixtures.test-util.js';
import { pad4, XdrReader } from './xdr.js';

const CALLS: Record<string, [prog: number, vers: number, proc: number, cred: number]> = {
  'mnt-call-tcp': [100005, 3, 1, AUTH_SYS],
  'mnt-call-udp': [100005, 3, 1, AUTH_SYS],
  'mnt-export-call-tcp': [100005, 3, 5, AUTH_SYS],
  'nfs3-access-call-tcp': [100003, 3, 4, AUTH_SYS],
  'nfs3-fsinfo-call-tcp': [100003, 3, 19, AUTH_SYS],
  'nfs3-getattr-call-tcp': [100003, 3, 1, AUTH_SYS],
  'nfs3-lookup-call-tcp': [100003, 3, 3, AUTH_SYS],
  'nfs3-null-call-tcp': [100003, 3, 0, AUTH_NONE],
  'nfs3-read-call-tcp': [100003, 3, 6, AUTH_SYS],
  'nfs3-readdirplus-call-tcp': [100003, 3, 17, AUTH_SYS],
  'pmap-dump-call-tcp': [100000, 2, 4, AUTH_NONE],
  'pmap-getport-call-tcp': [100000, 2, 3, AUTH_SYS],
};

describe('RpcCallView on golden calls', () => {
  test('every call fixture is listed here', () => {
    expect(fixtureNames().filter((n) => n.includes('-call-'))).toEqual(Object.keys(CALLS));
  });

  for (const [name, [prog, vers, proc, cred]] of Object.entries(CALLS)) {
    test(`${name}: program ${prog} v${vers} proc ${proc}`, () => {
      const f = loadRpc(name);
      const v = new RpcCallView();
      expect(v.bind(f.packet, f.off, f.len)).toBe(OK);
      expect([v.prog, v.vers, v.proc, v.rpcvers, v.credFlavor, v.verfFlavor]).toEqual([
        prog,
        vers,
        proc,
        2,
        cred,
        AUTH_NONE,
      ]);
      expect(v.isCall(prog, vers, proc)).toBe(true);
      expect(v.isCall(prog, vers, proc + 1)).toBe(false);
      // The offsets follow the XDR walk: cred body at +32, verifier after its padding, then the args.
      expect(v.credOff).toBe(f.off + 32);
      expect(v.verfOff).toBe(v.credOff + pad4(v.credLen) + 8);
      expect(v.argsOffset).toBe(v.verfOff + pad4(v.verfLen));
      expect(v.argsOffset + v.argsLength).toBe(f.off + f.len);
    });
  }

  test('libnfs AUTH_SYS credential: machine name "libnfs", uid 0, gid 0', () => {
    const f = loadRpc('mnt-call-tcp');
    const v = RpcCallView.parse(f.packet, f.off, f.len);
    if (!v.ok) throw new Error('bind failed');
    const r = new XdrReader().reset(f.packet, v.value.credOff, v.value.credOff + v.value.credLen);
    r.u32();
    r.string(255);
    expect(r.text()).toBe('libnfs');
    expect([r.u32(), r.u32(), r.u32(), r.remaining, r.error]).toEqual([0, 0, 0, 0, OK]);
  });

  test('the MNT call over TCP and UDP answers with the same xid as the reply', () => {
    for (const t of ['tcp', 'udp']) {
      const call = RpcCallView.parse(message(loadRpc(`mnt-call-${t}`)));
      const reply = message(loadRpc(`mnt-reply-${t}`));
      expect(call.ok && call.value.xid).toBe(Buffer.from(reply).readUInt32BE(0));
    }
  });
});

describe('encodeCall', () => {
  test('round trip through the view, AUTH_SYS credential and a verifier', () => {
    const cred = encodeAuthSys({ stamp: 5, machineName: 'n1', uid: 1000, gid: 100, gids: [1, 2] });
    const args = Uint8Array.of(0, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd);
    const msg = encodeCall(
      {
        xid: 0xfeedf00d,
        prog: 100003,
        vers: 3,
        proc: 6,
        credFlavor: AUTH_SYS,
        cred,
        verfFlavor: 9,
        verf: Uint8Array.of(1),
      },
      args,
    );
    const v = new RpcCallView();
    expect(v.bind(msg)).toBe(OK);
    expect([v.xid, v.prog, v.vers, v.proc, v.credFlavor, v.credLen, v.verfFlavor, v.verfLen]).toEqual([
      0xfeedf00d,
      100003,
      3,
      6,
      AUTH_SYS,
      cred.length,
      9,
      1,
    ]);
    expect([...msg.subarray(v.credOff, v.credOff + v.credLen)]).toEqual([...cred]);
    expect([...msg.subarray(v.argsOffset)]).toEqual([...args]);
    expect(msg.length).toBe(RPC_CALL_MIN + pad4(cred.length) + 4 + args.length);
  });

  test('throws RangeError on an auth body over 400 bytes or too many groups', () => {
    expect(() => encodeCall({ xid: 1, prog: 1, vers: 1, proc: 1, cred: new Uint8Array(401) })).toThrow(
      RangeError,
    );
    expect(() => encodeAuthSys({ machineName: 'x', uid: 0, gid: 0, gids: new Array(17).fill(0) })).toThrow(
      RangeError,
    );
  });
});

/**
 * header builds a call header with the given lengths; a credential body is present unless its length is
 * absurd, a verifier body only when `verfBody`.
 */
function header(mtype: number, rpcvers: number, credLen: number, verfLen = 0, verfBody = true): Uint8Array {
  const words = [1, mtype, rpcvers, 100005, 3, 1, AUTH_SYS, credLen];
  const credBytes = credLen <= 4096 ? pad4(credLen) : 0;
  const out = new Uint8Array(words.length * 4 + credBytes + 8 + (verfBody ? pad4(verfLen) : 0));
  const dv = new DataView(out.buffer);
  for (const [i, w] of words.entries()) dv.setUint32(i * 4, w);
  dv.setUint32(32 + credBytes, AUTH_NONE);
  dv.setUint32(36 + credBytes, verfLen);
  return out;
}

describe('RpcCallView named malformed cases', () => {
  const v = new RpcCallView();

  test('msg_type not CALL', () => {
    expect(v.bind(header(1, 2, 0))).toBe(RPC_NOT_CALL);
    expect(v.bind(header(7, 2, 0).subarray(0, 8))).toBe(RPC_NOT_CALL);
    expect(errorInfo(RPC_NOT_CALL)).toEqual({ code: RPC_NOT_CALL, kind: 'malformed', name: 'rpc_not_call' });
  });

  test('wrong rpcvers', () => {
    expect(v.bind(header(0, 1, 0))).toBe(RPC_BAD_RPCVERS);
    expect(v.bind(header(0, 3, 0))).toBe(RPC_BAD_RPCVERS);
  });

  test('credential longer than the cap, even when its bytes are not there', () => {
    expect(v.bind(header(0, 2, MAX_AUTH_BYTES))).toBe(OK);
    expect(v.bind(header(0, 2, MAX_AUTH_BYTES + 1))).toBe(RPC_CRED_TOO_LONG);
    expect(v.bind(header(0, 2, 0xffffffff, 0, false).subarray(0, 32))).toBe(RPC_CRED_TOO_LONG);
  });

  test('verifier longer than the cap', () => {
    expect(v.bind(header(0, 2, 8, MAX_AUTH_BYTES))).toBe(OK);
    expect(v.bind(header(0, 2, 8, MAX_AUTH_BYTES + 1, false))).toBe(RPC_VERF_TOO_LONG);
  });

  test('credential body past the end is truncated', () => {
    expect(v.bind(header(0, 2, 16))).toBe(OK);
    expect(v.bind(header(0, 2, 16).subarray(0, 40))).toBe(RPC_CALL_TRUNCATED);
    expect(v.bind(header(0, 2, 8, 12, false))).toBe(RPC_CALL_TRUNCATED);
  });

  test('a range outside the buffer is truncated, not a throw', () => {
    const msg = header(0, 2, 0);
    for (const [off, len] of [
      [-1, 10],
      [0, msg.length + 1],
      [Number.NaN, 4],
      [4, -1],
    ] as const) {
      expect(v.bind(msg, off, len)).toBe(RPC_CALL_TRUNCATED);
    }
  });

  test('truncated header at every cut point of every golden call', () => {
    for (const name of Object.keys(CALLS)) {
      const f = loadRpc(name);
      expect(v.bind(f.packet, f.off, f.len)).toBe(OK);
      const headerLen = v.argsOffset - f.off;
      for (let cut = 0; cut < headerLen; cut++) {
        expect(v.bind(f.packet, f.off, cut), `${name} cut at ${cut}`).toBe(RPC_CALL_TRUNCATED);
      }
      // Cuts inside the arguments leave a whole header: the argument views decide.
      expect(v.bind(f.packet, f.off, headerLen)).toBe(OK);
      expect(v.argsLength).toBe(0);
    }
  });
});
