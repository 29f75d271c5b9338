import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, DATAPATH, startCluster } from './cluster.js';

// The gateway's live status page in a real browser (Debian's chromium, headless), inside the gateway's
// namespace, where the management listener is: the DOM follows the cluster without a reload.
// Screenshots go to test/.results/screenshots/ for a person to look at.
const SHOTS = new URL('../.results/screenshots/', import.meta.url).pathname;
let c: Cluster;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  c = await startCluster();
  // chromium runs in the gateway host's namespace, talking to us over a pipe (no port to reach)
  const wrapper = join(c.dir, 'chromium-in-gw');
  await writeFile(wrapper, `#!/bin/sh\nexec ip netns exec ${c.lab.names.gateway} chromium "$@"\n`);
  await chmod(wrapper, 0o755);
  // Chromium's start takes both cores for a moment; the 350 ms heartbeat timeout can notice
  browser = await puppeteer.launch({
    executablePath: wrapper,
    pipe: true,
    headless: true,
    userDataDir: join(c.dir, 'chromium-profile'),
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
  page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 1000 });
  await mkdir(SHOTS, { recursive: true });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await c?.stop();
});

const stateOf = (node: string) =>
  page.$eval(`tr[data-node="${node}"] td.state`, (td) => (td as HTMLElement).dataset.state ?? '');

describe(`the status page (${DATAPATH})`, () => {
  it('shows members, the switch table with connections, and goes live', async () => {
    for (let i = 0; i < 6; i++) await c.curl('c1', `http://${c.vip}/`);
    await page.goto(`http://${c.lab.addresses.gateway.inside}:9400/status`);
    await page.waitForFunction(() => document.getElementById('conn')?.textContent === 'live', {
      timeout: 10_000,
    });
    await page.waitForFunction(
      () =>
        ['n1', 'n2', 'n3'].every(
          (n) =>
            (document.querySelector(`tr[data-node="${n}"] td.state`) as HTMLElement | null)?.dataset.state ===
            'active',
        ),
      { timeout: 10_000 },
    );
    await page.waitForFunction(
      () => Number(document.querySelector('tr[data-entry="tcp/80"] td.num')?.textContent ?? 0) > 0,
      { timeout: 5000 },
    );
    expect(await page.$eval('#datapath', (e) => e.textContent)).toBe(DATAPATH);
    await page.screenshot({ path: join(SHOTS, `status-${DATAPATH}-1-live.png`), fullPage: true });
  });

  it('turns a node that dies to down within 2 s, and lists the event', async () => {
    const agent = c.agents.get('n2')!;
    const killed = Date.now();
    process.kill(agent.pid, 'SIGKILL');
    await page.waitForFunction(
      () =>
        (document.querySelector('tr[data-node="n2"] td.state') as HTMLElement | null)?.dataset.state ===
        'down',
      { timeout: 2000, polling: 50 },
    );
    const tookMs = Date.now() - killed;
    expect(tookMs).toBeLessThan(2000);
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll('#events tr[data-kind="down"]')].some((tr) =>
          tr.textContent?.includes('n2 down'),
        ),
      { timeout: 2000 },
    );
    expect(await stateOf('n1')).toBe('active');
    await page.screenshot({ path: join(SHOTS, `status-${DATAPATH}-2-n2-down.png`), fullPage: true });
  });

  it('explains a flow from its form', async () => {
    await page.$eval('input[name="dport"]', (e) => {
      (e as HTMLInputElement).value = '80';
    });
    await page.click('#explain button[type="submit"]');
    await page.waitForFunction(() => document.getElementById('explain-out')?.dataset.decision !== undefined, {
      timeout: 5000,
    });
    const decision = await page.$eval('#explain-out', (e) => (e as HTMLElement).dataset.decision);
    expect(['n1', 'n3']).toContain(decision); // n2 is down: never a new connection's node
    expect(await page.$eval('#explain-out', (e) => e.textContent)).toMatch(/^forward to n[13] \(node \d+\)/);
    await page.screenshot({ path: join(SHOTS, `status-${DATAPATH}-3-explain.png`), fullPage: true });
  });
});
