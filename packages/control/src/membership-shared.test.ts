import { describe, expect, it } from 'vitest';
import { ControlError } from './control-error.js';
import { Membership } from './membership.js';
import type { Allocation, AllocationRules, NewMember } from './store/control-store.js';
import { planAllocation } from './store/etcd-layout.js';
import { FileStore } from './store/file-store.js';
import type { MemberRecord } from './store/records.js';
import { ManualClock } from './testing/manual-clock.js';

/**
 * SharedStore stands for a store several gateways share: it allocates from what it holds (which
 * another gateway may have written), and each allocation waits until the test releases it.
 */
class SharedStore extends FileStore {
  held: MemberRecord[] = [];
  next = 1;
  calls: string[] = [];
  puts: string[] = [];
  fail: Error | null = null;
  private gates: (() => void)[] = [];

  constructor() {
    super(null);
  }

  async allocateMember(m: NewMember, rules: AllocationRules): Promise<Allocation> {
    this.calls.push(m.name);
    await new Promise<void>((resolve) => this.gates.push(resolve));
    if (this.fail !== null) throw this.fail;
    const a = planAllocation({ members: this.held, exports: [], nextNodeId: this.next }, m, rules);
    if (a.kind === 'created') {
      this.held.push(a.member);
      this.next = a.member.id + 1;
    }
    return a;
  }

  override putMember(m: MemberRecord): Promise<void> {
    this.puts.push(`${m.name} ${m.state}`);
    return super.putMember(m);
  }

  /** release lets the waiting allocations go on. */
  release(): void {
    for (const g of this.gates.splice(0)) g();
  }
}

const input = (name: string, last: number) => ({
  name,
  internalAddress: `198.18.0.${last}`,
  vxlanMac: '02:00:5e:10:00:01',
  capabilities: ['vxlan'],
});

function setup(store = new SharedStore(), blockSize = 1024) {
  const m = new Membership({
    store,
    contents: { members: [], exports: [], nextNodeId: 1 },
    clock: new ManualClock(),
    blockSize,
    portRange: { lo: 32768, hi: 34815 },
  });
  const joined: string[] = [];
  m.onChange((c) => joined.push(`${c.kind} ${c.member.name} ${c.member.id}`));
  return { m, store, joined };
}

/** settled lets pending promise callbacks run (the store's gate is reached). */
const settled = () => new Promise((resolve) => setImmediate(resolve));

describe('Membership on a shared store', () => {
  it('asks the store for a new node’s id and block, and writes nothing more', async () => {
    const { m, store, joined } = setup();
    const p = m.join(input('n1', 11));
    await settled();
    expect(joined).toEqual([]); // nothing is announced before the store admitted the node
    store.release();
    const rec = await p;
    expect([rec.id, rec.block, rec.state]).toEqual([1, { lo: 32768, hi: 33791 }, 'active']);
    expect(joined).toEqual(['joined n1 1']);
    expect(store.puts).toEqual([]);
    // a rejoin is this gateway's business: no allocation, one write
    await m.leave('n1');
    const again = await m.join(input('n1', 11));
    expect(again.id).toBe(1);
    expect(store.calls).toEqual(['n1']);
  });

  it('writes nothing to the store for heartbeats', async () => {
    const { m, store } = setup();
    const p = m.join(input('n1', 11));
    await settled();
    store.release();
    await p;
    const session = m.attachHeartbeat('n1', 1, () => {});
    for (let i = 0; i < 50; i++) m.beat(session);
    expect(store.puts).toEqual([]);
    expect(store.calls).toEqual(['n1']);
    m.close();
  });

  it('takes the record another gateway made for the name, with its drain', async () => {
    const { m, store } = setup();
    store.held.push({
      ...input('n7', 17),
      id: 7,
      block: { lo: 33792, hi: 34815 },
      drained: true,
      state: 'down',
      lastSeenUnixMs: 0,
      downReason: 'left',
    });
    const p = m.join(input('n7', 27));
    await settled();
    store.release();
    const rec = await p;
    expect([rec.id, rec.block.lo, rec.state, rec.internalAddress]).toEqual([
      7,
      33792,
      'draining',
      '198.18.0.27',
    ]);
    expect(store.puts).toEqual(['n7 draining']);
  });

  it('admits a name once when it joins twice at once; refuses its address to another name meanwhile', async () => {
    const { m, store } = setup();
    const a = m.join(input('n1', 11));
    const b = m.join(input('n1', 11));
    await settled();
    await expect(m.join(input('n2', 11))).rejects.toThrow(/internal_address: 198\.18\.0\.11 is n1's/);
    store.release();
    const [ra, rb] = await Promise.all([a, b]);
    expect(store.calls).toEqual(['n1']);
    expect(rb.id).toBe(ra.id);
  });

  it('says RESOURCE_EXHAUSTED when the store has no block, UNAVAILABLE naming the store when it fails', async () => {
    const { m, store } = setup(new SharedStore(), 2048);
    const first = m.join(input('n1', 11));
    await settled();
    store.release();
    await first;
    const full = m.join(input('n2', 12)).catch((e: unknown) => e);
    await settled();
    store.release();
    const e = (await full) as ControlError;
    expect(e.codeName).toBe('RESOURCE_EXHAUSTED');
    expect(e.message).toBe('port range 32768-34815 has no free block of 2048 ports (1 nodes hold blocks)');
    store.fail = new Error('etcd store https://127.0.0.1:2379 (prefix /x/): admitting n3: etcd unreachable');
    const down = m.join(input('n3', 13)).catch((err: unknown) => err);
    await settled();
    store.release();
    const d = (await down) as ControlError;
    expect(d).toBeInstanceOf(ControlError);
    expect(d.codeName).toBe('UNAVAILABLE');
    expect(d.message).toMatch(
      /^store: etcd store https:\/\/127\.0\.0\.1:2379 \(prefix \/x\/\): admitting n3/,
    );
    expect(m.member('n3')).toBeUndefined();
    m.close();
  });
});
