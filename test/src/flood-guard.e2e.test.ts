import { waitFor } from '@onehost/testkit';
import { TCP_FLAGS } from '@onehost/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, DATAPATH, startCluster } from './cluster.js';
import { Injector, makeFlows } from './flows.js';

// A flood of packets nobody knows (TCP segments of connections that never began, from spoofed sources
// inside 203.0.113.0/24) at a least-connections port (round robin and Maglev place such segments by hash
// in the kernel: docs/fastpath.md). The kernel passes them to user space, where the switch drops them; its guard lets only a few thousand a second through, per class, so the first
// packets of connections that user space decides (least-connections) and the calls routed by their
// payload (MOUNT) still get through while the flood lasts. Kernel mode only: in tun mode there is no
// kernel in front of the TUN to guard it (the flood is issue-15 territory there).

const FLOOD_SECONDS = 4;

let c: Cluster;

beforeAll(async () => {
  c = await startCluster({
    gatewayYaml: (y) =>
      y.replace(
        /^entries:\n/m,
        'entries:\n  - { protocol: tcp, port: 8080, function: connection, policy: least-conn, nodes: [n1, n2, n3] }\n',
      ),
  });
  for (const n of ['n1', 'n2', 'n3']) {
    c.lab.spawn(n, 'python3', [
      '-m',
      'http.server',
      '8080',
      '--bind',
      '0.0.0.0',
      '--directory',
      c.lab.runDir,
    ]);
    await waitFor(
      async () => (await c.lab.exec(n, 'ss', ['-ltn', 'sport = :8080'])).stdout.includes('LISTEN'),
      {
        what: `a server on ${n}:8080`,
      },
    );
  }
}, 180_000);
afterAll(async () => {
  await c?.stop();
});

/** flood sends the same set of unknown segments again and again for `seconds`, bounded in count too. */
async function flood(seconds: number): Promise<number> {
  const injector = new Injector(c.lab.host('c1').netns, c.vip);
  const flows = makeFlows(4096, 99, 'tcp', 8080);
  const end = Date.now() + seconds * 1000;
  let sent = 0;
  try {
    while (Date.now() < end && sent < 5_000_000) {
      await injector.send(flows, TCP_FLAGS.ACK, 4096, 0);
      sent += flows.length;
    }
  } finally {
    injector.close();
  }
  return sent;
}

describe.runIf(DATAPATH === 'kernel')('the guard in front of user space (kernel)', () => {
  it('first packets and payload routing get through a flood of unknown segments, which the guard counts', {
    timeout: 120_000,
  }, async () => {
    const guard = () =>
      c.metric('onehost_user_space_packets_total', { class: 'unknown', outcome: 'guard_drop' });
    const before = await guard();
    const flooding = flood(FLOOD_SECONDS);
    // while it lasts: new least-connections connections (their first packet is user space's) and MOUNT
    // calls over UDP (routed by what they carry), from the other outside host
    const deadline = Date.now() + (FLOOD_SECONDS - 1) * 1000;
    let pages = 0;
    let calls = 0;
    const failures: string[] = [];
    while (Date.now() < deadline) {
      await c.lab
        .exec('c2', 'curl', ['-sS', '--max-time', '3', '-o', '/dev/null', `http://${c.vip}:8080/`])
        .then(
          () => pages++,
          (e: Error) => failures.push(e.message.split('\n')[0]!),
        );
      await c.lab.exec('c2', 'rpcinfo', ['-u', c.vip, '100005', '3'], { timeoutMs: 5000 }).then(
        () => calls++,
        (e: Error) => failures.push(e.message.split('\n')[0]!),
      );
    }
    const sent = await flooding;
    expect(failures).toEqual([]);
    expect(pages).toBeGreaterThan(3);
    expect(calls).toBeGreaterThan(3);
    // most of the flood never reached user space
    const dropped = (await guard()) - before;
    expect(sent).toBeGreaterThan(50_000);
    expect(dropped).toBeGreaterThan(sent / 2);
  });
});
