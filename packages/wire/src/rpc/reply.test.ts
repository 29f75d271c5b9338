import { describe, expect, test } from 'vitest';
import { OK } from '../errors.js';
import { AUTH_NONE, RPC_VERF_TOO_LONG } from './call.js';
import { fixtureNames, loadRpc } from './fixtures.test-util.js';
import {
  AUTH_ERROR,
  AUTH_TOOWEAK,
  encodeAcceptedReply,
  encodeAuthErrorReply,
  encodeRpcMismatchReply,
  GARBAGE_ARGS,
  MSG_ACCEPTED,
  MSG_DENIED,
  PROC_UNAVAIL,
  PROG_MISMATCH,
  PROG_UNAVAIL,
  RPC_BAD_ACCEPT_STAT,
  RPC_BAD_REJECT_STAT,
  RPC_BAD_REPLY_STAT,
  RPC_MISMATCH,
  RPC_NOT_REPLY,
  RPC_REPLY_NOT_SUCCESS,
  RPC_REPLY_TRUNCATED,
  RpcReplyView,
  SUCCESS,
  SYSTEM_ERR,
  successResults,
} from './reply.js';
import { XdrWriter } from './xdr.js';

const REPLIES = fixtureNames().filter((n) => n.includes('-reply-'));

describe('RpcReplyView on golden replies', () => {
  test('there are five: MNT over TCP and UDP, EXPORT, GETPORT, DUMP', () => {
    expect(REPLIES).toEqual([
      'mnt-export-reply-tcp',
      'mnt-reply-tcp',
      'mnt-reply-udp',
      'pmap-dump-reply-tcp',
      'pmap-getport-reply-tcp',
    ]);
  });

  for (const name of REPLIES) {
    test(`${name}: accepted, SUCCESS, AUTH_NONE verifier, results after 24 bytes`, () => {
      const f = loadRpc(name);
      const v = new RpcReplyView();
      expect(v.bind(f.packet, f.off, f.len)).toBe(OK);
      expect([v.replyStat, v.verfFlavor, v.verfLen, v.acceptStat, v.rejectStat, v.success]).toEqual([
        MSG_ACCEPTED,
        AUTH_NONE,
        0,
        SUCCESS,
        -1,
        true,
      ]);
      expect(v.resultsOffset).toBe(f.off + 24);
      expect(v.resultsLength).toBe(f.len - 24);
    });
  }

  test('truncated at every cut point of the reply header', () => {
    const v = new RpcReplyView();
    for (const name of REPLIES) {
      const f = loadRpc(name);
      for (let cut = 0; cut < 24; cut++) {
        expect(v.bind(f.packet, f.off, cut), `${name} cut at ${cut}`).toBe(RPC_REPLY_TRUNCATED);
      }
      expect(v.bind(f.packet, f.off, 24)).toBe(OK);
    }
  });
});

describe('reply builders round trip', () => {
  const v = new RpcReplyView();

  test('SUCCESS with results', () => {
    const results = new XdrWriter().u32(2049).bytes();
    const msg = encodeAcceptedReply(0x1234, SUCCESS, results);
    expect(v.bind(msg)).toBe(OK);
    expect([v.xid, v.acceptStat, v.resultsLength]).toEqual([0x1234, SUCCESS, 4]);
    expect(msg[v.resultsOffset + 3]).toBe(2049 & 0xff);
    expect(successResults(v, msg)).toBe(OK);
  });

  for (const stat of [PROG_UNAVAIL, PROC_UNAVAIL, GARBAGE_ARGS, SYSTEM_ERR]) {
    test(`accept_stat ${stat} carries nothing`, () => {
      const msg = encodeAcceptedReply(7, stat);
      expect(msg.length).toBe(24);
      expect(v.bind(msg)).toBe(OK);
      expect([v.xid, v.acceptStat, v.success, v.resultsLength]).toEqual([7, stat, false, 0]);
      expect(successResults(v, msg)).toBe(RPC_REPLY_NOT_SUCCESS);
    });
  }

  test('PROG_MISMATCH carries the supported range', () => {
    const msg = encodeAcceptedReply(8, PROG_MISMATCH, undefined, { low: 3, high: 3 });
    expect(v.bind(msg)).toBe(OK);
    expect([v.acceptStat, v.mismatchLow, v.mismatchHigh, v.resultsLength]).toEqual([PROG_MISMATCH, 3, 3, 0]);
    expect(() => encodeAcceptedReply(8, PROG_MISMATCH)).toThrow(RangeError);
    expect(() => encodeAcceptedReply(8, PROC_UNAVAIL, Uint8Array.of(0, 0, 0, 0))).toThrow(RangeError);
    expect(() => encodeAcceptedReply(8, 6)).toThrow(RangeError);
  });

  test('denied: RPC_MISMATCH and AUTH_ERROR', () => {
    expect(v.bind(encodeRpcMismatchReply(9))).toBe(OK);
    expect([v.xid, v.replyStat, v.rejectStat, v.acceptStat, v.mismatchLow, v.mismatchHigh]).toEqual([
      9,
      MSG_DENIED,
      RPC_MISMATCH,
      -1,
      2,
      2,
    ]);
    expect(v.bind(encodeAuthErrorReply(10, AUTH_TOOWEAK))).toBe(OK);
    expect([v.rejectStat, v.authStat, v.success]).toEqual([AUTH_ERROR, AUTH_TOOWEAK, false]);
    expect(successResults(v, encodeAuthErrorReply(10, AUTH_TOOWEAK))).toBe(RPC_REPLY_NOT_SUCCESS);
  });
});

function words(...ws: number[]): Uint8Array {
  const w = new XdrWriter();
  for (const x of ws) w.u32(x);
  return w.bytes();
}

describe('RpcReplyView named malformed cases', () => {
  const v = new RpcReplyView();
  test('a call is not a reply', () => {
    expect(v.bind(words(1, 0, 2, 100003, 3, 0, 0, 0, 0, 0))).toBe(RPC_NOT_REPLY);
  });
  test('reply_stat, accept_stat, reject_stat out of range', () => {
    expect(v.bind(words(1, 1, 2))).toBe(RPC_BAD_REPLY_STAT);
    expect(v.bind(words(1, 1, 0, 0, 0, 6))).toBe(RPC_BAD_ACCEPT_STAT);
    expect(v.bind(words(1, 1, 1, 2))).toBe(RPC_BAD_REJECT_STAT);
  });
  test('verifier longer than the cap', () => {
    expect(v.bind(words(1, 1, 0, 0, 401))).toBe(RPC_VERF_TOO_LONG);
  });
  test('mismatch and auth details cut short', () => {
    expect(v.bind(words(1, 1, 0, 0, 0, PROG_MISMATCH, 3))).toBe(RPC_REPLY_TRUNCATED);
    expect(v.bind(words(1, 1, 1, RPC_MISMATCH, 2))).toBe(RPC_REPLY_TRUNCATED);
    expect(v.bind(words(1, 1, 1, AUTH_ERROR))).toBe(RPC_REPLY_TRUNCATED);
    expect(v.bind(words(1, 1, 0, 0, 8, 0))).toBe(RPC_REPLY_TRUNCATED);
  });
  test('a range outside the buffer', () => {
    expect(v.bind(words(1, 1, 0, 0, 0, 0), 4, 24)).toBe(RPC_REPLY_TRUNCATED);
    expect(RpcReplyView.parse(words(1, 1)).ok).toBe(false);
  });
});
