import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Lab, requireRoot, waitFor } from '@onehost/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { flood } from './index.js';
import { quietNetns, waitForLinkGone } from './testing/lab.js';

requireRoot();

const workerScript = new URL('./fixtures/queue-worker.mjs', import.meta.url);
const addon = fileURLToPath(new URL('../build/Release/onehost_tun.node', import.meta.url));

interface Report {
  packets: number;
  flows: number;
}

function ask(worker: Worker): Promise<Report> {
  return new Promise((resolve) => {
    worker.once('message', resolve);
    worker.postMessage('report');
  });
}

describe('multi-queue', () => {
  const lab = new Lab();
  const workers: Worker[] = [];
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.terminate()));
    await lab.cleanup();
  });

  it('spreads flows over two queues owned by two worker threads, both receiving', async () => {
    const ns = await quietNetns(lab);
    const name = lab.linkName('m');
    for (let i = 0; i < 2; i++) {
      const w = new Worker(workerScript, { workerData: { addon, name, netns: ns.name } });
      workers.push(w);
      await new Promise<void>((resolve, reject) => {
        w.once('message', () => resolve());
        w.once('error', reject);
      });
    }
    const { stdout } = await ns.ip('-d', 'link', 'show', 'dev', name);
    expect(stdout).toContain('multi_queue');
    // Room for the whole flood in each queue's ring, so a worker the scheduler holds back loses nothing.
    await ns.ip('link', 'set', 'dev', name, 'txqueuelen', '4000');
    await ns.addAddress(name, '198.18.13.1/24');
    const total = 2000;
    const sent = await flood({
      netns: ns.name,
      destination: '198.18.13.2',
      count: total,
      flows: 64,
      durationMs: 5000,
      ratePps: 100_000,
    });
    expect(sent.sent).toBe(total);
    const reports = await waitFor(
      async () => {
        const r = await Promise.all(workers.map(ask));
        return r[0]!.packets + r[1]!.packets >= total ? r : undefined;
      },
      { what: `${total} packets across both queues`, timeoutMs: 5000 },
    );
    expect(reports[0]!.packets + reports[1]!.packets).toBe(total);
    // The kernel picks a queue by flow hash: with 64 flows each queue gets some.
    expect(reports[0]!.packets).toBeGreaterThan(0);
    expect(reports[1]!.packets).toBeGreaterThan(0);
    expect(reports[0]!.flows + reports[1]!.flows).toBe(64);

    // One worker closes its queue, the other is terminated with its queue open: the addon's cleanup
    // hook releases it, and with the last queue gone the device goes too.
    workers[0]!.postMessage('close');
    await new Promise((resolve) => workers[0]!.once('exit', resolve));
    await workers[1]!.terminate();
    await waitForLinkGone(ns, name);
  });
});
