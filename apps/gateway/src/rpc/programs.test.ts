import { readFileSync } from 'node:fs';
import {
  AUTH_BADCRED,
  AUTH_ERROR,
  AUTH_REJECTEDCRED,
  AUTH_SYS,
  decodeDumpReply,
  decodeExportReply,
  decodeGetportReply,
  encodeAuthSys,
  encodeCall,
  encodePmapArgs,
  GARBAGE_ARGS,
  MOUNT_PROGRAM,
  NFS_PROGRAM,
  OK,
  PMAP_IPPROTO_TCP,
  PMAP_IPPROTO_UDP,
  PMAP_PROGRAM,
  PROC_UNAVAIL,
  PROG_MISMATCH,
  PROG_UNAVAIL,
  RPC_MISMATCH,
  RpcReplyView,
  SUCCESS,
  SYSTEM_ERR,
  XdrReader,
  XdrWriter,
} from '@onehost/wire';
import { describe, expect, it } from 'vitest';
import { type ClusterRpcPorts, clusterRpcPorts } from './cluster-ports.js';
import { RpcCounters } from './counters.js';
import { AUTH_BADVERF, authSysOk, type CallContext, RpcDispatcher, type RpcProgram } from './dispatch.js';
import { clusterExports, MountProgram } from './mount.js';
import { NFS3ERR_STALE, NfsProgram, staleResult } from './nfs.js';
import { PortmapProgram } from './portmap.js';

const UDP: CallContext = { transport: 'udp', localAddress: '127.0.0.1', localPort: 111 };
const PORTS: ClusterRpcPorts = clusterRpcPorts([
  { protocol: 'udp', port: 111, function: 'portmap' },
  { protocol: 'tcp', port: 111, function: 'portmap' },
  { protocol: 'udp', port: 20048, function: 'mount' },
  { protocol: 'tcp', port: 20049, function: 'mount' },
  { protocol: 'udp', port: 2049, function: 'nfs' },
  { protocol: 'tcp', port: 2049, function: 'nfs' },
  { protocol: 'tcp', port: 80, function: 'connection' },
]);

function setup(program: RpcProgram) {
  const counters = new RpcCounters();
  const d = new RpcDispatcher(program, counters);
  const ask = (msg: Uint8Array) => {
    const out = d.handle(msg, UDP);
    if (out === null) return null;
    const v = new RpcReplyView();
    expect(v.bind(out)).toBe(OK);
    return { v, out, results: out.subarray(v.resultsOffset) };
  };
  return { counters, d, ask };
}

const pmap = () => setup(new PortmapProgram(() => PORTS));
const sys = encodeAuthSys({ machineName: 'c1', uid: 0, gid: 0, gids: [0, 10] });
const call = (prog: number, vers: number, proc: number, args?: Uint8Array, xid = 0x11223344) =>
  encodeCall({ xid, prog, vers, proc, credFlavor: AUTH_SYS, cred: sys }, args);
const u32s = (...v: number[]) => {
  const w = new XdrWriter(4 * v.length);
  for (const x of v) w.u32(x);
  return w.bytes();
};
const string = (s: string | number) => {
  const w = new XdrWriter(64);
  if (typeof s === 'number') w.u32(s);
  else w.string(s);
  return w.bytes();
};
const handle = (exportId: number, len = 24) => {
  const fh = new Uint8Array(len);
  fh[0] = 0x43;
  fh[2] = exportId >> 8;
  fh[3] = exportId & 0xff;
  return new XdrWriter(4 + len).opaque(fh).bytes();
};

/** value unwraps a decoder's result; throws naming the error. */
function value<T>(c: { ok: true; value: T } | { ok: false; error: { name: string } }): T {
  if (!c.ok) throw new Error(c.error.name);
  return c.value;
}

/** The RPC message inside a captured TCP packet (IPv4 header, TCP header, record mark). */
function fixture(name: string): Uint8Array {
  const text = readFileSync(
    new URL(`../../../../packages/wire/fixtures/rpc/${name}.hex`, import.meta.url),
    'utf8',
  );
  const hex = text.split('\n').find((l) => l !== '' && !l.startsWith('#'))!;
  const p = Uint8Array.from(Buffer.from(hex.trim(), 'hex'));
  const ihl = (p[0]! & 15) * 4;
  return p.subarray(ihl + (p[ihl + 12]! >> 4) * 4 + 4);
}

describe('clusterRpcPorts', () => {
  it('reads the portmap, mount and nfs entries per transport, lowest port first', () => {
    expect(PORTS).toEqual({
      portmap: { udp: 111, tcp: 111 },
      mount: { udp: 20048, tcp: 20049 },
      nfs: { udp: 2049, tcp: 2049 },
    });
    expect(
      clusterRpcPorts([
        { protocol: 'udp', port: 900, function: 'mount' },
        { protocol: 'udp', port: 635, function: 'mount' },
      ]).mount,
    ).toEqual({ udp: 635 });
    expect(clusterRpcPorts([])).toEqual({ portmap: {}, mount: {}, nfs: {} });
  });
});

describe('RpcDispatcher: RFC 5531 §9 errors', () => {
  it('answers RPC_MISMATCH (2..2) to another RPC version, echoing the xid', () => {
    const { ask, counters } = pmap();
    const m = call(PMAP_PROGRAM, 2, 0);
    m[11] = 3;
    const r = ask(m)!;
    expect([r.v.xid, r.v.rejectStat, r.v.mismatchLow, r.v.mismatchHigh]).toEqual([
      0x11223344,
      RPC_MISMATCH,
      2,
      2,
    ]);
    expect(counters.get('portmap', 'udp', 'rpc_mismatch')).toBe(1);
  });

  it('answers AUTH_ERROR to bad, oversized and unknown credentials and oversized verifiers', () => {
    const { ask, counters } = pmap();
    const cases: [string, Uint8Array, number][] = [
      ['credential of 401 bytes', encodeCall({ xid: 1, prog: PMAP_PROGRAM, vers: 2, proc: 0 }), AUTH_BADCRED],
      ['verifier of 401 bytes', encodeCall({ xid: 2, prog: PMAP_PROGRAM, vers: 2, proc: 0 }), AUTH_BADVERF],
      [
        'AUTH_SYS whose machine name runs past the body',
        encodeCall({
          xid: 3,
          prog: PMAP_PROGRAM,
          vers: 2,
          proc: 0,
          credFlavor: AUTH_SYS,
          cred: u32s(0, 300, 0),
        }),
        AUTH_BADCRED,
      ],
      [
        'AUTH_SYS with 17 groups',
        encodeCall({
          xid: 4,
          prog: PMAP_PROGRAM,
          vers: 2,
          proc: 0,
          credFlavor: AUTH_SYS,
          cred: u32s(0, 0, 0, 0, 17, ...new Array(17).fill(1)),
        }),
        AUTH_BADCRED,
      ],
      [
        'RPCSEC_GSS',
        encodeCall({ xid: 5, prog: PMAP_PROGRAM, vers: 2, proc: 0, credFlavor: 6, cred: u32s(1, 0) }),
        AUTH_REJECTEDCRED,
      ],
    ];
    cases[0]![1].set(u32s(401), 28); // cred length field
    cases[1]![1].set(u32s(401), 36); // verf length field (empty credential)
    for (const [what, m, stat] of cases) {
      const r = ask(m);
      expect(r, what).not.toBeNull();
      expect([r!.v.rejectStat, r!.v.authStat], what).toEqual([AUTH_ERROR, stat]);
    }
    expect(counters.get('portmap', 'udp', 'auth_error')).toBe(cases.length);
    expect(authSysOk(sys, 0, sys.length)).toBe(true);
    expect(ask(call(PMAP_PROGRAM, 2, 0))!.v.acceptStat).toBe(SUCCESS);
  });

  it('answers PROG_UNAVAIL, PROG_MISMATCH with the versions served, and PROC_UNAVAIL', () => {
    const { ask } = pmap();
    expect(ask(call(NFS_PROGRAM, 3, 0))!.v.acceptStat).toBe(PROG_UNAVAIL);
    const m = ask(call(PMAP_PROGRAM, 1, 3))!.v;
    expect([m.acceptStat, m.mismatchLow, m.mismatchHigh]).toEqual([PROG_MISMATCH, 2, 4]);
    expect(ask(call(PMAP_PROGRAM, 2, 5))!.v.acceptStat).toBe(PROC_UNAVAIL); // CALLIT: forwarded for nobody
    expect(ask(call(PMAP_PROGRAM, 2, 99))!.v.acceptStat).toBe(PROC_UNAVAIL);
  });

  it('leaves a header cut anywhere, and anything not a call, unanswered and counted', () => {
    const { ask, counters } = pmap();
    const m = call(PMAP_PROGRAM, 2, 3, encodePmapArgs({ prog: MOUNT_PROGRAM, vers: 3, prot: 17, port: 0 }));
    const header = m.length - 16;
    for (let cut = 0; cut < header; cut++) expect(ask(m.subarray(0, cut)), `cut at ${cut}`).toBeNull();
    expect(counters.get('portmap', 'udp', 'truncated')).toBe(header);
    // Cut inside the arguments: the header is whole, so the call gets GARBAGE_ARGS.
    expect(ask(m.subarray(0, header + 8))!.v.acceptStat).toBe(GARBAGE_ARGS);
    const reply = m.slice();
    reply[7] = 1;
    expect(ask(reply)).toBeNull();
    expect(counters.get('portmap', 'udp', 'not_call')).toBe(1);
  });

  it('answers SYSTEM_ERR when a program throws', () => {
    const counters = new RpcCounters();
    const d = new RpcDispatcher(
      {
        service: 'nfs',
        prog: 7,
        low: 1,
        high: 1,
        maxRecordSize: 100,
        call() {
          throw new Error('bug');
        },
      },
      counters,
    );
    const v = new RpcReplyView();
    expect(v.bind(d.handle(call(7, 1, 1), UDP)!)).toBe(OK);
    expect(v.acceptStat).toBe(SYSTEM_ERR);
    expect(counters.get('nfs', 'udp', 'system_err')).toBe(1);
  });

  it('never throws on random or mutated messages, and every answer is a reply to the same xid', () => {
    const programs = [new PortmapProgram(() => PORTS), new MountProgram(() => []), new NfsProgram()];
    const seeds = [
      call(PMAP_PROGRAM, 2, 3, encodePmapArgs({ prog: MOUNT_PROGRAM, vers: 3, prot: 17, port: 0 })),
      call(
        PMAP_PROGRAM,
        3,
        3,
        new XdrWriter(64).u32(MOUNT_PROGRAM).u32(3).string('tcp6').string('').string('').bytes(),
      ),
      call(MOUNT_PROGRAM, 3, 1, string('/srv/projects')),
      call(NFS_PROGRAM, 3, 6, new Uint8Array([...handle(11), ...u32s(0, 0, 4096)])),
    ];
    let seed = 0x1234567;
    const rnd = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed;
    };
    let answered = 0;
    for (const p of programs) {
      const d = new RpcDispatcher(p, new RpcCounters());
      for (let i = 0; i < 20_000; i++) {
        const base = seeds[rnd() % seeds.length]!;
        const m = base.slice(0, rnd() % 3 === 0 ? rnd() % (base.length + 1) : base.length);
        for (let k = rnd() % 4; k >= 0; k--) if (m.length > 0) m[rnd() % m.length] = rnd() & 0xff;
        // now and then a length field set huge
        if (rnd() % 5 === 0 && m.length >= 4)
          m.set(u32s(0xfffffff0 + (rnd() % 16)), (rnd() % (m.length >> 2)) * 4);
        const out = d.handle(m, UDP);
        if (out === null) continue;
        answered++;
        const v = new RpcReplyView();
        expect(v.bind(out)).toBe(OK);
        expect(v.xid).toBe(Buffer.from(m.buffer, m.byteOffset, 4).readUInt32BE(0));
      }
    }
    expect(answered).toBeGreaterThan(1000);
  });
});

describe('PortmapProgram (RFC 1833 §3)', () => {
  const getport = (prog: number, vers: number, prot: number) =>
    call(PMAP_PROGRAM, 2, 3, encodePmapArgs({ prog, vers, prot, port: 0 }));

  it("answers GETPORT with the cluster's ports, 0 for what the cluster does not serve", () => {
    const { d } = pmap();
    const port = (m: Uint8Array) => value(decodeGetportReply(d.handle(m, UDP)!));
    expect(port(getport(MOUNT_PROGRAM, 3, PMAP_IPPROTO_UDP))).toBe(20048);
    expect(port(getport(MOUNT_PROGRAM, 3, PMAP_IPPROTO_TCP))).toBe(20049);
    expect(port(getport(MOUNT_PROGRAM, 1, PMAP_IPPROTO_UDP))).toBe(20048);
    expect(port(getport(NFS_PROGRAM, 3, PMAP_IPPROTO_TCP))).toBe(2049);
    expect(port(getport(PMAP_PROGRAM, 2, PMAP_IPPROTO_UDP))).toBe(111);
    expect(port(getport(100021, 4, PMAP_IPPROTO_UDP))).toBe(0); // NLM: not here
    expect(port(getport(NFS_PROGRAM, 3, 132))).toBe(0); // SCTP
  });

  it('answers the GETPORT libnfs sends (captured) like rpcbind, with the cluster port', () => {
    const { d } = pmap();
    const m = fixture('pmap-getport-call-tcp');
    expect(value(decodeGetportReply(d.handle(m, UDP)!))).toBe(20049); // libnfs asks for MOUNT v3 over TCP
  });

  it('lists portmapper, MOUNT v1 and v3 and NFS v3 in DUMP', () => {
    const { d } = pmap();
    const list = value(decodeDumpReply(d.handle(call(PMAP_PROGRAM, 2, 4), UDP)!));
    expect(list.map((m) => `${m.prog} v${m.vers} ${m.prot === 6 ? 'tcp' : 'udp'} ${m.port}`)).toEqual([
      '100000 v2 tcp 111',
      '100000 v2 udp 111',
      '100000 v3 tcp 111',
      '100000 v3 udp 111',
      '100000 v4 tcp 111',
      '100000 v4 udp 111',
      '100005 v1 tcp 20049',
      '100005 v1 udp 20048',
      '100005 v3 tcp 20049',
      '100005 v3 udp 20048',
      '100003 v3 tcp 2049',
      '100003 v3 udp 2049',
    ]);
  });

  it('refuses SET and UNSET from the network, GARBAGE_ARGS without a mapping', () => {
    const { ask, counters } = pmap();
    const set = ask(call(PMAP_PROGRAM, 2, 1, encodePmapArgs({ prog: 300000, vers: 1, prot: 17, port: 9 })))!;
    expect([set.v.acceptStat, [...set.results]]).toEqual([SUCCESS, [0, 0, 0, 0]]);
    expect(ask(call(PMAP_PROGRAM, 2, 2, u32s(1, 2)))!.v.acceptStat).toBe(GARBAGE_ARGS);
    expect(ask(call(PMAP_PROGRAM, 2, 3))!.v.acceptStat).toBe(GARBAGE_ARGS);
    expect(counters.get('portmap', 'udp', 'refused')).toBe(1);
    expect(counters.get('portmap', 'udp', 'garbage_args')).toBe(2);
  });
});

describe('PortmapProgram as rpcbind, versions 3 and 4 (RFC 1833 §2)', () => {
  const UDP6: CallContext = { transport: 'tcp', localAddress: '2001:db8:113::80', localPort: 111 };
  /** rpcb: prog, vers, netid, addr, owner (RFC 1833 §2.1) */
  const rpcb = (prog: number, vers: number, netid: string) =>
    new XdrWriter(64).u32(prog).u32(vers).string(netid).string('').string('').bytes();
  const addrOf = (out: Uint8Array) => {
    const v = new RpcReplyView();
    expect(v.bind(out)).toBe(OK);
    expect(v.acceptStat).toBe(SUCCESS);
    const r = new XdrReader().reset(out, v.resultsOffset);
    r.string(255);
    return r.text();
  };

  it('GETADDR names the cluster address the call came to and the cluster port on its transport (the netid is ignored)', () => {
    const { d } = pmap();
    const TCP4: CallContext = { ...UDP, transport: 'tcp' };
    const ask = (vers: number, proc: number, prog: number, netid: string, ctx = UDP6) =>
      addrOf(d.handle(call(PMAP_PROGRAM, vers, proc, rpcb(prog, 3, netid)), ctx)!);
    // 20049 = 78 × 256 + 81, 20048 = 78 × 256 + 80; 2049 = 8 × 256 + 1
    expect(ask(3, 3, MOUNT_PROGRAM, 'tcp6')).toBe('2001:db8:113::80.78.81');
    // RFC 1833 §2.2.1: libnfs sends an empty netid; any other is ignored as well
    expect(ask(3, 3, MOUNT_PROGRAM, '')).toBe('2001:db8:113::80.78.81');
    expect(ask(3, 3, MOUNT_PROGRAM, 'udp')).toBe('2001:db8:113::80.78.81');
    expect(ask(4, 3, NFS_PROGRAM, '')).toBe('2001:db8:113::80.8.1');
    expect(ask(4, 9, MOUNT_PROGRAM, '')).toBe('2001:db8:113::80.78.81');
    expect(ask(3, 3, MOUNT_PROGRAM, '', UDP)).toBe('127.0.0.1.78.80');
    expect(ask(3, 3, MOUNT_PROGRAM, '', TCP4)).toBe('127.0.0.1.78.81');
    // a program the cluster does not serve: not registered
    expect(ask(3, 3, 100021, '')).toBe('');
  });

  it('DUMP lists every mapping with its netid and universal address; SET refused; the rest checked', () => {
    const { d, ask, counters } = pmap();
    const out = d.handle(call(PMAP_PROGRAM, 4, 4), UDP6)!;
    const v = new RpcReplyView();
    expect(v.bind(out)).toBe(OK);
    const r = new XdrReader().reset(out, v.resultsOffset);
    const got: string[] = [];
    while (r.bool()) {
      const prog = r.u32();
      const vers = r.u32();
      const parts = [0, 1, 2].map(() => {
        r.string(255);
        return r.text();
      });
      got.push(`${prog} v${vers} ${parts.join(' ')}`);
    }
    expect(r.error).toBe(OK);
    expect(got).toContain('100005 v3 tcp6 2001:db8:113::80.78.81 superuser');
    expect(got).toContain('100000 v4 udp6 2001:db8:113::80.0.111 superuser');
    expect(got).toHaveLength(12);
    const set = ask(call(PMAP_PROGRAM, 3, 1, rpcb(300000, 1, 'udp')))!;
    expect([set.v.acceptStat, [...set.results]]).toEqual([SUCCESS, [0, 0, 0, 0]]);
    expect(ask(call(PMAP_PROGRAM, 3, 3, u32s(1, 2)))!.v.acceptStat).toBe(GARBAGE_ARGS);
    expect(ask(call(PMAP_PROGRAM, 3, 9, rpcb(MOUNT_PROGRAM, 3, 'udp')))!.v.acceptStat).toBe(PROC_UNAVAIL);
    expect(ask(call(PMAP_PROGRAM, 4, 5))!.v.acceptStat).toBe(PROC_UNAVAIL);
    const time = ask(call(PMAP_PROGRAM, 4, 6))!;
    expect(Math.abs(Buffer.from(time.results).readUInt32BE(0) - Date.now() / 1000)).toBeLessThan(60);
    const v5 = ask(call(PMAP_PROGRAM, 5, 3, rpcb(MOUNT_PROGRAM, 3, 'udp')))!;
    expect([v5.v.acceptStat, v5.v.mismatchLow, v5.v.mismatchHigh]).toEqual([PROG_MISMATCH, 2, 4]);
    expect(counters.get('portmap', 'udp', 'refused')).toBe(1);
  });
});

describe('MountProgram (RFC 1813 Appendix I)', () => {
  const exports = [{ dir: '/srv/export', groups: [] }];
  const mount = () => setup(new MountProgram(() => exports));

  it('answers EXPORT byte for byte as nfs-ganesha did (captured showmount -e)', () => {
    const { d } = mount();
    expect(Buffer.from(d.handle(fixture('mnt-export-call-tcp'), UDP)!).toString('hex')).toBe(
      Buffer.from(fixture('mnt-export-reply-tcp')).toString('hex'),
    );
  });

  it('answers MNT of a path no node exports MNT3ERR_NOENT, a path over 1024 bytes GARBAGE_ARGS', () => {
    const { ask, counters } = mount();
    const r = ask(call(MOUNT_PROGRAM, 3, 1, string('/srv/nothing')))!;
    expect([r.v.acceptStat, [...r.results]]).toEqual([SUCCESS, [0, 0, 0, 2]]);
    expect(ask(call(MOUNT_PROGRAM, 1, 1, string('/x')))!.results.length).toBe(4); // v1: errno, no handle
    expect(ask(call(MOUNT_PROGRAM, 3, 1, string(2000)))!.v.acceptStat).toBe(GARBAGE_ARGS);
    expect(ask(call(MOUNT_PROGRAM, 3, 3, string(0xffffffff)))!.v.acceptStat).toBe(GARBAGE_ARGS);
    expect(counters.get('mount', 'udp', 'noent')).toBe(2);
  });

  it('answers NULL, UMNT, UMNTALL, an empty DUMP, EXPORTALL in v1 only, and nothing past it', () => {
    const { ask, d } = mount();
    expect(ask(call(MOUNT_PROGRAM, 3, 0))!.results.length).toBe(0);
    expect(ask(call(MOUNT_PROGRAM, 3, 3, string('/srv/export')))!.v.acceptStat).toBe(SUCCESS);
    expect(ask(call(MOUNT_PROGRAM, 3, 4))!.v.acceptStat).toBe(SUCCESS);
    expect([...ask(call(MOUNT_PROGRAM, 3, 2))!.results]).toEqual([0, 0, 0, 0]);
    expect(value(decodeExportReply(d.handle(call(MOUNT_PROGRAM, 1, 6), UDP)!))).toEqual(exports);
    expect(ask(call(MOUNT_PROGRAM, 3, 6))!.v.acceptStat).toBe(PROC_UNAVAIL);
    const m = ask(call(MOUNT_PROGRAM, 4, 0))!.v;
    expect([m.acceptStat, m.mismatchLow, m.mismatchHigh]).toEqual([PROG_MISMATCH, 1, 3]);
  });

  it('lists the exports of the nodes that are up, sorted by path', () => {
    expect(
      clusterExports(
        [
          { name: 'n1', state: 'active' },
          { name: 'n2', state: 'draining' },
          { name: 'n3', state: 'down' },
        ],
        [
          { nodeName: 'n2', exports: [{ path: '/srv/projects' }] },
          { nodeName: 'n1', exports: [{ path: '/srv/home' }, { path: '/a' }] },
          { nodeName: 'n3', exports: [{ path: '/srv/scratch' }] },
          { nodeName: 'n9', exports: [{ path: '/srv/gone' }] },
        ],
      ).map((e) => e.dir),
    ).toEqual(['/a', '/srv/home', '/srv/projects']);
  });
});

describe('NfsProgram (RFC 1813)', () => {
  const nfs = () => setup(new NfsProgram());

  it('answers a handle no node registered NFS3ERR_STALE with the procedure’s empty failure body', () => {
    const { ask, counters } = nfs();
    const sizes: Record<number, number> = { 1: 0, 3: 4, 6: 4, 7: 8, 14: 16, 15: 12, 21: 8 };
    for (const [proc, size] of Object.entries(sizes)) {
      const r = ask(
        call(NFS_PROGRAM, 3, Number(proc), new Uint8Array([...handle(999), ...u32s(0, 0, 0, 0, 0)])),
      )!;
      expect(r.v.acceptStat).toBe(SUCCESS);
      expect(Buffer.from(r.results).readUInt32BE(0)).toBe(NFS3ERR_STALE);
      expect(r.results.length, `procedure ${proc}`).toBe(4 + size);
      expect(r.results.subarray(4).every((b) => b === 0)).toBe(true);
    }
    expect(counters.get('nfs', 'udp', 'stale')).toBe(Object.keys(sizes).length);
    expect(staleResult(19).length).toBe(8);
  });

  it('answers the GETATTR libnfs sent (captured) NFS3ERR_STALE', () => {
    const { d } = nfs();
    const v = new RpcReplyView();
    const out = d.handle(fixture('nfs3-getattr-call-tcp'), UDP)!;
    expect(v.bind(out)).toBe(OK);
    expect([...out.subarray(v.resultsOffset)]).toEqual([0, 0, 0, NFS3ERR_STALE]);
  });

  it('answers NULL, and GARBAGE_ARGS, PROC_UNAVAIL and PROG_MISMATCH (3..3) where they belong', () => {
    const { ask } = nfs();
    expect(ask(call(NFS_PROGRAM, 3, 0))!.v.acceptStat).toBe(SUCCESS);
    expect(ask(call(NFS_PROGRAM, 3, 1, handle(1, 0).subarray(0, 4).fill(0xff)))!.v.acceptStat).toBe(
      GARBAGE_ARGS,
    );
    expect(ask(call(NFS_PROGRAM, 3, 1, u32s(65)))!.v.acceptStat).toBe(GARBAGE_ARGS);
    expect(ask(call(NFS_PROGRAM, 3, 22, handle(1)))!.v.acceptStat).toBe(PROC_UNAVAIL);
    const m = ask(call(NFS_PROGRAM, 4, 0))!.v;
    expect([m.acceptStat, m.mismatchLow, m.mismatchHigh]).toEqual([PROG_MISMATCH, 3, 3]);
  });
});
