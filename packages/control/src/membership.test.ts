import { describe, expect, it } from 'vitest';
import { ControlError } from './control-error.js';
import { type MemberChange, Membership, type MembershipOptions } from './membership.js';
import { FileStore } from './store/file-store.js';
import type { StoreContents } from './store/records.js';
import { ManualClock } from './testing/manual-clock.js';
import { healthChecks } from './validate.js';

const input = (name: string, last: number) => ({
  name,
  internalAddress: `198.18.0.${last}`,
  vxlanMac: `02:00:5e:10:00:${last.toString(16).padStart(2, '0')}`,
  capabilities: ['vxlan'],
});

async function setup(opts: Partial<MembershipOptions> = {}, contents?: StoreContents) {
  const clock = new ManualClock();
  const store = new FileStore(null);
  const loaded = contents ?? (await store.load());
  const m = new Membership({ store, contents: loaded, clock, blockSize: 1024, ...opts });
  const changes: MemberChange[] = [];
  m.onChange((c) => changes.push(c));
  const kinds = () => changes.map((c) => `${c.kind} ${c.member.name}`);
  return { m, clock, store, changes, kinds };
}

function refusal(fn: () => unknown): ControlError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ControlError) return err;
    throw err;
  }
  throw new Error('expected a ControlError');
}

describe('Membership', () => {
  it('gives each new node the next id and the next free block, and the same ones on rejoin', async () => {
    const { m } = await setup();
    const a = await m.join(input('n1', 11));
    const b = await m.join(input('n2', 12));
    expect([a.id, a.block, b.id, b.block]).toEqual([
      1,
      { lo: 32768, hi: 33791 },
      2,
      { lo: 33792, hi: 34815 },
    ]);
    await m.leave('n1');
    const again = await m.join({ ...input('n1', 21), vxlanMac: '02:00:5e:10:00:99' });
    expect([again.id, again.block]).toEqual([1, { lo: 32768, hi: 33791 }]);
    expect(again.internalAddress).toBe('198.18.0.21');
    expect(again.vxlanMac).toBe('02:00:5e:10:00:99');
    // by internal address (the splice messages' question): the rejoin's, a copy, nothing for the old one
    const at = m.memberAt('198.18.0.21');
    expect([at?.name, at?.id]).toEqual(['n1', 1]);
    at!.id = 99;
    expect(m.memberAt('198.18.0.21')?.id).toBe(1);
    expect(m.memberAt('198.18.0.11')).toBeUndefined();
    expect(m.memberAt('198.18.0.12')?.name).toBe('n2');
  });

  it('moves its generation with every reported change, and not with a beat', async () => {
    const { m, changes } = await setup({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 350 });
    const g0 = m.generation;
    await m.join(input('n1', 11));
    const session = m.attachHeartbeat('n1', 1, () => undefined);
    const g1 = m.generation;
    m.beat(session);
    expect(m.generation).toBe(g1);
    m.setReachable('n1', false, 'probe');
    await m.drain('n1');
    expect([g1 - g0, m.generation - g1]).toEqual([1, 2]);
    expect(m.generation - g0).toBe(changes.length);
  });

  it('does not time a node out while its join is still being written: the timeout counts from the answer', async () => {
    const { m, clock, store, kinds } = await setup({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 350 });
    await m.join(input('n1', 11));
    m.attachHeartbeat('n1', 1, () => undefined);
    // the rejoin's store write takes 2 s (a busy etcd)
    let release = () => {};
    const put = store.putMember.bind(store);
    store.putMember = async (r) => {
      await new Promise<void>((res) => {
        release = res;
      });
      return put(r);
    };
    const rejoin = m.join(input('n1', 11));
    await Promise.resolve();
    clock.advance(2000);
    expect(m.members()[0]?.state).toBe('active');
    release();
    await rejoin;
    // answered now: no beat for 349 ms is fine, 350 ms is not
    clock.advance(349);
    expect(m.members()[0]?.state).toBe('active');
    clock.advance(1);
    expect(m.members()[0]?.state).toBe('down');
    expect(kinds()).toEqual(['joined n1', 'joined n1', 'down n1']);
  });

  it('puts a judgement off by one interval when the gateway itself ran late, once', async () => {
    const { m, clock } = await setup({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 350 });
    await m.join(input('n1', 11));
    m.attachHeartbeat('n1', 1, () => undefined);
    // busy for 500 ms: the timer, due at 350, runs at 500
    clock.stall(500);
    clock.advance(0);
    expect(m.members()[0]?.state).toBe('active');
    expect(m.lateJudgements).toBe(1);
    // no beat comes: down one interval later
    clock.advance(99);
    expect(m.members()[0]?.state).toBe('active');
    clock.advance(1);
    expect(m.members()[0]?.state).toBe('down');
    // late again after the grace: judged, not put off twice
    await m.join(input('n2', 12));
    m.attachHeartbeat('n2', 2, () => undefined);
    clock.stall(500);
    clock.advance(0);
    clock.stall(300);
    clock.advance(0);
    expect(m.members().find((x) => x.name === 'n2')?.state).toBe('down');
    expect(m.lateJudgements).toBe(2);
  });

  it('marks a node down exactly when the heartbeat timeout passes without a beat', async () => {
    const { m, clock, kinds } = await setup({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 350 });
    await m.join(input('n1', 11));
    const ends: ControlError[] = [];
    const s = m.attachHeartbeat('n1', 1, (e) => ends.push(e));
    for (let i = 0; i < 5; i++) {
      clock.advance(100);
      expect(m.beat(s)).toBe('active');
    }
    clock.advance(349);
    expect(m.member('n1')?.state).toBe('active');
    clock.advance(1);
    expect(m.member('n1')).toMatchObject({ state: 'down', downReason: 'heartbeat timeout' });
    expect(kinds()).toEqual(['joined n1', 'down n1']);
    expect(ends.map((e) => e.codeName)).toEqual(['FAILED_PRECONDITION']);
    expect(refusal(() => m.beat(s)).codeName).toBe('FAILED_PRECONDITION');
    expect(refusal(() => m.attachHeartbeat('n1', 1, () => {})).message).toMatch(
      /n1 is down \(heartbeat timeout\)/,
    );
  });

  it('does not judge a late timer before the heartbeats that waited behind it were read', async () => {
    const { m, clock, kinds } = await setup({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 350 });
    await m.join(input('n1', 11));
    const s = m.attachHeartbeat('n1', 1, () => {});
    // the process was busy for a second: the timer fires first, the beat that arrived meanwhile next
    const pending: Array<() => void> = [];
    clock.afterPendingIo = (fn) => pending.push(fn);
    clock.advance(1000);
    expect(pending).toHaveLength(1);
    expect(m.beat(s)).toBe('active');
    for (const fn of pending.splice(0)) fn();
    expect(m.member('n1')?.state).toBe('active');
    // the beat pushed the deadline back: with no more beats it passes as usual
    clock.advance(350);
    for (const fn of pending.splice(0)) fn();
    expect(kinds()).toEqual(['joined n1', 'down n1']);
  });

  it('keeps each node’s health report, says when it changes, and forgets it when the node goes down', async () => {
    const { m, clock, kinds } = await setup({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 350 });
    await m.join(input('n1', 11));
    const s = m.attachHeartbeat('n1', 1, () => {});
    const web = { name: 'web', description: 'http /healthz', covers: ['tcp/80', 'tcp/443'], detail: '200' };
    m.beat(s, [{ ...web, healthy: true, sinceUnixMs: 1 }]);
    m.beat(s, [{ ...web, healthy: true, sinceUnixMs: 1 }]);
    expect(m.unhealthyCovers().size).toBe(0);
    m.beat(s, [{ ...web, healthy: false, detail: '503', sinceUnixMs: 2 }]);
    m.beat(s); // no report: nothing changes
    expect([...(m.unhealthyCovers().get('n1')?.keys() ?? [])]).toEqual(['tcp/80', 'tcp/443']);
    expect(m.healthOf('n1')[0]).toMatchObject({ healthy: false, detail: '503' });
    expect(kinds()).toEqual(['joined n1', 'health n1', 'health n1']);
    clock.advance(350);
    expect(m.healthOf('n1')).toEqual([]);
    expect(m.unhealthyCovers().size).toBe(0);
  });

  it('counts the deadline from the join when no stream comes', async () => {
    const { m, clock } = await setup({ heartbeatTimeoutMs: 350 });
    await m.join(input('n1', 11));
    clock.advance(350);
    expect(m.member('n1')?.state).toBe('down');
  });

  it('marks a node down a timeout after its stream closes, but not for a superseded stream', async () => {
    const { m, clock, kinds } = await setup({ heartbeatTimeoutMs: 350 });
    await m.join(input('n1', 11));
    const ends: string[] = [];
    const first = m.attachHeartbeat('n1', 1, (e) => ends.push(`first ${e.message}`));
    const second = m.attachHeartbeat('n1', 1, (e) => ends.push(`second ${e.message}`));
    expect(ends).toEqual(['first superseded by a newer heartbeat stream']);
    m.detachHeartbeat(first);
    clock.advance(200);
    m.beat(second);
    m.detachHeartbeat(second);
    clock.advance(349);
    expect(m.member('n1')?.state).toBe('active');
    clock.advance(1);
    expect(m.member('n1')).toMatchObject({ state: 'down', downReason: 'heartbeat stream closed' });
    expect(kinds()).toEqual(['joined n1', 'down n1']);
  });

  it('keeps a node up when its agent reconnects within the timeout after its stream closed', async () => {
    const { m, clock, kinds } = await setup({ heartbeatTimeoutMs: 350 });
    await m.join(input('n1', 11));
    const s1 = m.attachHeartbeat('n1', 1, () => {});
    m.beat(s1);
    m.detachHeartbeat(s1);
    clock.advance(300);
    await m.join(input('n1', 11));
    const s2 = m.attachHeartbeat('n1', 1, () => {});
    m.beat(s2);
    clock.advance(300);
    m.beat(s2);
    clock.advance(300);
    expect(m.member('n1')?.state).toBe('active');
    expect(kinds()).toEqual(['joined n1', 'joined n1']);
    // and a new stream on the same join that beats also keeps it
    m.beat(s2);
    m.detachHeartbeat(s2);
    const s3 = m.attachHeartbeat('n1', 1, () => {});
    clock.advance(100);
    m.beat(s3);
    clock.advance(300);
    expect(m.member('n1')?.state).toBe('active');
    clock.advance(50);
    expect(m.member('n1')).toMatchObject({ state: 'down', downReason: 'heartbeat timeout' });
  });

  it('ends the old session when the node joins again, and the old stream closing changes nothing', async () => {
    const { m, clock } = await setup();
    await m.join(input('n1', 11));
    const ends: string[] = [];
    const old = m.attachHeartbeat('n1', 1, (e) => ends.push(e.message));
    await m.join(input('n1', 11));
    expect(ends).toEqual(['superseded by a newer join']);
    m.detachHeartbeat(old);
    expect(m.member('n1')?.state).toBe('active');
    const fresh = m.attachHeartbeat('n1', 1, () => {});
    clock.advance(300);
    m.beat(fresh);
    clock.advance(300);
    expect(m.member('n1')?.state).toBe('active');
  });

  it('refuses heartbeats for unknown nodes and wrong ids', async () => {
    const { m } = await setup();
    expect(refusal(() => m.attachHeartbeat('n9', 1, () => {})).message).toBe('node_name: n9 has not joined');
    await m.join(input('n1', 11));
    const e = refusal(() => m.attachHeartbeat('n1', 7, () => {}));
    expect([e.codeName, e.message]).toEqual(['INVALID_ARGUMENT', 'node_id: n1 is node 1, not 7']);
  });

  it('setReachable: unreachable while heartbeating, back to its state when probes answer; a drain outlives it', async () => {
    const { m, kinds } = await setup({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 350 });
    await m.join(input('n1', 11));
    const s = m.attachHeartbeat('n1', 1, () => {});
    m.setReachable('n1', false, 'data path: 3 probes unanswered (every 200 ms)');
    m.setReachable('n1', false, 'again'); // no second transition
    expect(m.member('n1')).toMatchObject({
      state: 'unreachable',
      downReason: 'data path: 3 probes unanswered (every 200 ms)',
    });
    expect(m.beat(s)).toBe('unreachable'); // heartbeats go on
    await m.drain('n1');
    expect(m.member('n1')?.state).toBe('unreachable');
    m.setReachable('n1', true, 'data path: 2 probes answered');
    expect(m.member('n1')).toMatchObject({ state: 'draining', downReason: '' });
    await m.drain('n1', true);
    m.setReachable('n1', false, 'x');
    await m.join(input('n1', 11)); // a rejoin starts over
    expect(m.member('n1')?.state).toBe('active');
    expect(kinds()).toEqual([
      'joined n1',
      'unreachable n1',
      'draining n1',
      'reachable n1',
      'undrained n1',
      'unreachable n1',
      'joined n1',
    ]);
  });

  it('setReachable leaves a down node down', async () => {
    const { m } = await setup();
    await m.join(input('n1', 11));
    await m.leave('n1');
    m.setReachable('n1', false, 'x');
    m.setReachable('n1', true, 'x');
    expect(m.member('n1')?.state).toBe('down');
  });

  it('keeps a drain across a down and a rejoin until it is lifted', async () => {
    const { m, clock, kinds } = await setup();
    await m.join(input('n1', 11));
    expect((await m.drain('n1')).state).toBe('draining');
    clock.advance(1000);
    expect(m.member('n1')?.state).toBe('down');
    expect((await m.join(input('n1', 11))).state).toBe('draining');
    expect((await m.drain('n1', true)).state).toBe('active');
    await m.drain('n1', true);
    expect(kinds()).toEqual(['joined n1', 'draining n1', 'down n1', 'joined n1', 'undrained n1']);
    await expect(m.drain('n9')).rejects.toThrow('node_name: no member named n9');
  });

  it('refuses an internal address another member holds, until that member is forgotten', async () => {
    const { m } = await setup();
    await m.join(input('n1', 11));
    await expect(m.join(input('n2', 11))).rejects.toMatchObject({
      codeName: 'ALREADY_EXISTS',
      message: 'internal_address: 198.18.0.11 belongs to n1 (node 1, active)',
    });
    await m.leave('n1');
    await expect(m.join(input('n2', 11))).rejects.toThrow('belongs to n1 (node 1, down)');
    await m.forget('n1');
    expect((await m.join(input('n2', 11))).id).toBe(2);
  });

  it('runs out of blocks with RESOURCE_EXHAUSTED', async () => {
    const { m } = await setup({ portRange: { lo: 40000, hi: 42047 }, blockSize: 1024 });
    await m.join(input('n1', 11));
    await m.join(input('n2', 12));
    await expect(m.join(input('n3', 13))).rejects.toMatchObject({
      codeName: 'RESOURCE_EXHAUSTED',
      message: 'port range 40000-42047 has no free block of 1024 ports (2 nodes hold blocks)',
    });
  });

  it('forgets only down nodes, and never reuses their ids', async () => {
    const { m, kinds } = await setup();
    await m.join(input('n1', 11));
    await expect(m.forget('n1')).rejects.toMatchObject({ codeName: 'FAILED_PRECONDITION' });
    await m.leave('n1');
    await m.forget('n1');
    expect(m.members()).toEqual([]);
    const again = await m.join(input('n1', 11));
    expect([again.id, again.block.lo]).toEqual([2, 32768]);
    expect(kinds()).toEqual(['joined n1', 'left n1', 'forgotten n1', 'joined n1']);
  });

  it('starts every stored member down after a restart and keeps ids and blocks', async () => {
    const first = await setup();
    await first.m.join(input('n1', 11));
    await first.m.join(input('n2', 12));
    const contents = await first.store.load();
    first.m.close();
    const { m } = await setup({}, contents);
    expect(m.members().map((x) => [x.name, x.id, x.block.lo, x.state, x.downReason])).toEqual([
      ['n1', 1, 32768, 'down', 'gateway restart'],
      ['n2', 2, 33792, 'down', 'gateway restart'],
    ]);
    expect((await m.join(input('n2', 12))).block.lo).toBe(33792);
    expect((await m.join(input('n3', 13))).id).toBe(3);
  });

  it('isolates a failing listener and stops everything on close', async () => {
    const { m, clock, changes } = await setup();
    m.onChange(() => {
      throw new Error('listener bug');
    });
    await m.join(input('n1', 11));
    expect(changes).toHaveLength(1);
    const ends: string[] = [];
    m.attachHeartbeat('n1', 1, (e) => ends.push(e.codeName));
    m.close();
    expect(ends).toEqual(['UNAVAILABLE']);
    clock.advance(10_000);
    expect(m.member('n1')?.state).toBe('active');
    await expect(m.join(input('n2', 12))).rejects.toMatchObject({ codeName: 'UNAVAILABLE' });
  });

  it('refuses heartbeat timing where the timeout does not exceed the interval', async () => {
    await expect(setup({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 100 })).rejects.toThrow(RangeError);
  });
});

describe('health reports from agents', () => {
  const ok = {
    name: 'web',
    description: 'http /healthz',
    covers: ['tcp/80'],
    healthy: true,
    detail: '200',
    sinceUnixMs: 1,
  };
  const refused = (v: Parameters<typeof healthChecks>[0]) => refusal(() => healthChecks(v)).message;
  it('are checked field by field', () => {
    expect(healthChecks([ok])).toEqual([ok]);
    expect(refused([{ ...ok, covers: ['tcp/80', 'sctp/9'] }])).toBe(
      'health[0].covers[1]: not an entry like tcp/80: "sctp/9"',
    );
    expect(refused([{ ...ok, covers: ['udp/0'] }])).toMatch(/^health\[0\]\.covers\[0\]: /);
    expect(refused([ok, ok])).toBe('health[1].name: web reported twice');
    expect(refused([{ ...ok, name: 'Web!' }])).toMatch(/^health\[0\]\.name: not a node name/);
    expect(refused([{ ...ok, detail: 'x'.repeat(201) }])).toBe(
      'health[0].detail: longer than 200 characters',
    );
    expect(refused(Array.from({ length: 33 }, (_, i) => ({ ...ok, name: `c${i}` })))).toBe(
      'health: at most 32 checks',
    );
  });
});
