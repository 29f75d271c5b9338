import { waitFor } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, DATAPATH, startCluster } from './cluster.js';
import { wrkResult } from './wrk.js';

// The data-path probe (docs/gateway.md): a node whose agent keeps heartbeating but whose data path is
// broken (here: the node's firewall drops VXLAN) leaves the switch as "unreachable" within
// (fall + 1) × interval of the gateway's defaults (3 × 200 ms), new connections all reach the others,
// and it comes back once its probes are answered again.
const BLOCK_TABLE = 'onehost_test_block';
let c: Cluster;

beforeAll(async () => {
  // a generous heartbeat deadline: on a loaded machine a heartbeat timeout must not be mistaken for
  // the probe's doing (the test asserts n2 stays heartbeat-alive)
  c = await startCluster({
    gatewayYaml: (y) => y.replace(/heartbeat: \{[^}]*\}/, 'heartbeat: { intervalMs: 100, timeoutMs: 3000 }'),
  });
});
afterAll(async () => {
  await c?.lab.exec('n2', 'nft', ['delete', 'table', 'ip', BLOCK_TABLE]).catch(() => undefined);
  await c?.stop();
});

interface MemberJson {
  name: string;
  state: string;
  downReason: string;
}
const members = async () => JSON.parse(await c.ctl(['members', '--json'])) as MemberJson[];

/** nodesOf asks the cluster address `n` times, each on a new connection; the nodes that answered. */
async function nodesOf(n: number): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < n; i++) seen.push((await c.curl('c1', `http://${c.vip}/`)).trim());
  return seen;
}

describe(`data-path probe (${DATAPATH})`, () => {
  it('probes every node through VXLAN and they answer', async () => {
    await waitFor(async () => (await c.metric('onehost_probe_sent_total', { node: 'n2' })) >= 5, {
      what: 'probes sent to n2',
      timeoutMs: 5000,
      intervalMs: 100,
    });
    expect((await members()).map((m) => m.state)).toEqual(['active', 'active', 'active']);
    expect(await c.metric('onehost_members', { state: 'unreachable' })).toBe(0);
  });

  it('VXLAN dropped on n2 while its agent heartbeats: n2 unreachable within a second, new connections reach n1 and n3', async () => {
    await c.lab.exec('n2', 'nft', ['-f', '-'], {
      input: `table ip ${BLOCK_TABLE} {\n  chain in { type filter hook input priority raw - 10; policy accept; udp dport 4789 counter drop; }\n}\n`,
    });
    const broken = Date.now();
    const mark = c.gateway.output().length;
    await waitFor(async () => (await members()).find((m) => m.name === 'n2')?.state === 'unreachable', {
      what: 'n2 unreachable',
      timeoutMs: 5000,
      intervalMs: 25,
    });
    // judged by the gateway's own log line (polling onehostctl adds its own delay on a loaded machine)
    const line = c.gateway
      .output()
      .slice(mark)
      .split('\n')
      .find((l) => l.includes('"msg":"node unreachable"') && l.includes('"node":"n2"'));
    const detectedMs = Number(/"time":(\d+)/.exec(line ?? '')?.[1]) - broken;
    const n2 = (await members()).find((m) => m.name === 'n2')!;
    expect(n2.downReason).toMatch(/data path: 3 probes unanswered \(every 200 ms\)/);
    expect(await c.ctl(['members'])).toMatch(/unreachable \(data path: 3 probes unanswered/);
    expect(await c.metric('onehost_members', { state: 'unreachable' })).toBe(1);
    await c.inStep();
    // the agent went on heartbeating: n2 was never down since the break
    expect(c.gateway.output().slice(mark)).not.toMatch(/"node":"n2"[^\n]*"msg":"node down"/);
    const after = await nodesOf(30);
    expect(new Set(after)).toEqual(new Set(['n1', 'n3']));
    const url = `http://${c.vip}/`;
    const wrk = wrkResult(
      (
        await c.lab.exec('c1', 'wrk', ['-t1', '-c4', '-d3s', '-H', 'Connection: close', url], {
          timeoutMs: 30_000,
        })
      ).stdout,
    );
    console.log(
      `probe (${DATAPATH}): n2's VXLAN dropped; unreachable after ${detectedMs} ms (3 × 200 ms); then 30 of 30 new connections reached n1/n3, wrk ${wrk.requests} requests, ${wrk.failed} failed`,
    );
    expect(detectedMs).toBeLessThan(2000);
    expect(wrk.requests).toBeGreaterThan(100);
    expect(wrk.failed).toBe(0);
  });

  it('VXLAN allowed again: n2 is active again and takes new connections', async () => {
    await c.lab.exec('n2', 'nft', ['delete', 'table', 'ip', BLOCK_TABLE]);
    const repaired = Date.now();
    const mark = c.gateway.output().length;
    await c.waitForState('n2', 'active', 5000);
    const line = c.gateway
      .output()
      .slice(mark)
      .split('\n')
      .find((l) => l.includes('"msg":"node reachable again"') && l.includes('"node":"n2"'));
    const backMs = Number(/"time":(\d+)/.exec(line ?? '')?.[1]) - repaired;
    console.log(`probe (${DATAPATH}): n2 reachable again ${backMs} ms after the repair (rise 2 × 200 ms)`);
    expect(backMs).toBeLessThan(2000);
    await waitFor(async () => (await nodesOf(6)).includes('n2'), {
      what: 'n2 answering through the cluster address',
      timeoutMs: 5000,
      intervalMs: 100,
    });
  });

  it('the cluster address deleted from n2: unreachable, and back when it returns', async () => {
    await c.lab.exec('n2', 'ip', ['addr', 'del', `${c.vip}/32`, 'dev', 'lo']);
    await waitFor(async () => (await members()).find((m) => m.name === 'n2')?.state !== 'active', {
      what: 'n2 not active',
      timeoutMs: 5000,
      intervalMs: 25,
    });
    // the agent notices the missing address itself and puts it back (or we do): n2 returns
    await c.lab.exec('n2', 'ip', ['addr', 'replace', `${c.vip}/32`, 'dev', 'lo']).catch(() => undefined);
    await c.waitForState('n2', 'active', 10_000);
  });
});
