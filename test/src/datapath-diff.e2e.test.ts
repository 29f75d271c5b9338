import { TCP_FLAGS } from '@onehost/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, DATAPATH, startCluster } from './cluster.js';
import { Arrivals, type ClientFlow, compare, Explainer, Injector, makeFlows } from './flows.js';

// The data path against its explanation, flow by flow: thousands of random flows per routing function
// are sent as raw packets from an outside host, each node records the flows that reached it, and the
// gateway's explain (a dry run) says where each should go. In kernel mode the kernel forwards almost all
// of them, so this is where the compiled table and the switch must agree: Maglev slot for slot, round
// robin and least-connections by their flow entries, the port blocks, while a node is drained, goes
// down and comes back. In tun mode the switch decides them all, and the test checks the same promises.

const { SYN, ACK } = TCP_FLAGS;
const NODES = ['n1', 'n2', 'n3'];
// the kernel path is what this test is for; in tun mode the switch decides every packet either way
const MANY = DATAPATH === 'kernel' ? 2_500 : 1_000;
const FEW = 1_500;

let c: Cluster;
let arrivals: Arrivals;
let injector: Injector;
let explainer: Explainer;
let blocks: Array<{ lo: number; hi: number }>;

beforeAll(async () => {
  c = await startCluster({
    gatewayYaml: (y) =>
      y.replace(
        /^entries:\n/m,
        'entries:\n  - { protocol: tcp, port: 8080, function: connection, policy: least-conn, nodes: [n1, n2, n3] }\n',
      ),
  });
  arrivals = new Arrivals(c, NODES);
  await arrivals.install();
  injector = new Injector(c.lab.host('c1').netns, c.vip);
  explainer = new Explainer(c);
  blocks = (await c.members()).map((m) => m.block);
}, 180_000);
afterAll(async () => {
  injector?.close();
  await c?.stop();
});

const inStep = (): Promise<void> => c.inStep();

/**
 * check sends `flows` (flags), explained before (new flows: what the switch will decide) or after
 * (flows whose entries decide them), and expects every flow where explain said. Returns where they went.
 */
async function check(
  flows: ClientFlow[],
  flags: number,
  explainFirst: boolean,
): Promise<Map<string, string>> {
  // a new flow is explained as the packet sent; a flow already sent as its connection's later segment
  // (a SYN explained again would be a new connection with another ISN)
  await arrivals.forget();
  let explained = explainFirst ? await explainer.explain(flows, flags === SYN ? 'S' : 'A') : undefined;
  await injector.send(flows, flags);
  const forwarded = explainFirst
    ? [...explained!.values()].filter((e) => NODES.includes(e.to)).length
    : flows.length;
  const { where, twice } = await arrivals.settle(forwarded, 8000);
  explained ??= await explainer.explain(flows, 'A');
  expect(twice).toEqual([]);
  const r = compare(flows, explained, where);
  expect(r.examples).toEqual([]);
  expect(r.mismatches).toBe(0);
  return where;
}

const spread = (where: ReadonlyMap<string, string>): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const n of where.values()) out[n] = (out[n] ?? 0) + 1;
  return out;
};

let seed = 1;
const inBlock = () => {
  const b = blocks[seed++ % blocks.length]!;
  return b.lo + ((seed * 7919) % (b.hi - b.lo + 1));
};

describe(`the data path decides as explain says, flow by flow (${DATAPATH})`, () => {
  const rr = makeFlows(MANY, 11, 'tcp', 80);
  const lc = makeFlows(MANY, 12, 'tcp', 8080);
  const mg = makeFlows(MANY, 13, 'tcp', 443);

  it(`fixed, Maglev, udp-flow and the port blocks: ${MANY} new flows each reach the node explain names`, {
    timeout: 240_000,
  }, async () => {
    await inStep();
    expect(new Set((await check(makeFlows(MANY, 1, 'tcp', 2222), SYN, true)).values())).toEqual(
      new Set(['n1']),
    );
    const m = spread(await check(mg, SYN, true));
    for (const n of NODES) expect(m[n]).toBeGreaterThan(MANY / 4);
    const u = spread(await check(makeFlows(MANY, 3, 'udp', 53), 0, true));
    for (const n of NODES) expect(u[n]).toBeGreaterThan(MANY / 4);
    const b = spread(await check(makeFlows(MANY, 4, 'tcp', inBlock), ACK, true));
    for (const n of NODES) expect(b[n]).toBeGreaterThan(MANY / 4);
  });

  it(`round robin and least-connections: ${MANY} connections each reach the node their entry names, later segments too`, {
    timeout: 240_000,
  }, async () => {
    await inStep();
    for (const flows of [rr, lc]) {
      const first = await check(flows, SYN, false);
      const s = spread(first);
      for (const n of NODES) expect(s[n]).toBeGreaterThan(MANY / 4);
      const later = await check(flows, ACK, false);
      for (const [k, n] of first) expect(later.get(k)).toBe(n);
    }
  });

  it('drained, a node keeps its connections and gets no new ones', { timeout: 180_000 }, async () => {
    await c.ctl(['drain', 'n3']);
    await c.waitForState('n3', 'draining');
    await inStep();
    // established connections stay where they are, whatever the function
    const old = rr.slice(0, FEW);
    await check(old, ACK, false);
    await check(mg.slice(0, FEW), ACK, false);
    for (const flows of [
      makeFlows(FEW, 21, 'tcp', 80),
      makeFlows(FEW, 22, 'tcp', 8080),
      makeFlows(FEW, 23, 'tcp', 443),
      makeFlows(FEW, 24, 'udp', 53),
    ]) {
      const where = await check(
        flows,
        flows[0]!.protocol === 'udp' ? 0 : SYN,
        flows[0]!.dport === 443 || flows[0]!.protocol === 'udp',
      );
      expect(spread(where).n3 ?? 0).toBe(0);
    }
  });

  it('down, a node’s connections are user space’s to decide: dropped, or re-derived by Maglev; its port moves to the backup', {
    timeout: 180_000,
  }, async () => {
    const agent = c.agents.get('n1')!;
    process.kill(agent.pid, 'SIGKILL');
    await agent.whenExited();
    await c.waitForState('n1', 'down', 5000);
    await inStep();
    // round robin and least-connections: no entry on another node, not a SYN → dropped (Fig. 10)
    for (const flows of [rr.slice(0, FEW), lc.slice(0, FEW)]) {
      const where = await check(flows, ACK, true);
      expect(spread(where).n1 ?? 0).toBe(0);
    }
    // Maglev with rederive: n1's connections go where the table without n1 says; the others stay
    const where = await check(mg.slice(0, FEW), ACK, true);
    expect(spread(where).n1 ?? 0).toBe(0);
    expect(spread(await check(makeFlows(FEW, 31, 'tcp', 2222), SYN, true))).toEqual({ n2: FEW });
  });

  it('back, it takes new connections again', { timeout: 180_000 }, async () => {
    await c.startAgent('n1');
    await c.waitForState('n1', 'active', 10_000);
    await c.ctl(['undrain', 'n3']);
    await c.waitForState('n3', 'active');
    await inStep();
    await arrivals.install(); // the restarted agent replaced the node's kernel setup
    for (const flows of [makeFlows(FEW, 41, 'tcp', 443), makeFlows(FEW, 42, 'udp', 53)]) {
      const s = spread(await check(flows, flows[0]!.protocol === 'udp' ? 0 : SYN, true));
      for (const n of NODES) expect(s[n]).toBeGreaterThan(FEW / 5);
    }
    const s = spread(await check(makeFlows(FEW, 43, 'tcp', 80), SYN, false));
    for (const n of NODES) expect(s[n]).toBeGreaterThan(FEW / 5);
    expect(spread(await check(makeFlows(FEW, 44, 'tcp', 2222), SYN, true))).toEqual({ n1: FEW });
  });
});
