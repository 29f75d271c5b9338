import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@onehost/testkit';
import { describe, expect, it } from 'vitest';
import { BgpAnnouncer, type Exec, type GuardStarter, makeAnnouncer } from './announce.js';
import { parseGatewayConfig } from './config.js';

const quiet = { info: () => undefined, warn: () => undefined };
const cfg = {
  asn: 64601,
  vtySocket: '/run/frr-gw',
  vtysh: 'vtysh',
  withdrawGraceMs: 0,
  peers: ['203.0.113.2'],
};

/** guards records the guards armed (their vtysh arguments) and which are still armed. */
function guards(): { start: GuardStarter; armed: string[][]; disarmed: number } {
  const g: { start: GuardStarter; armed: string[][]; disarmed: number } = {
    armed: [] as string[][],
    disarmed: 0,
    start: ((_file: string, args: string[]) => {
      g.armed.push(args);
      return { disarm: () => g.disarmed++ };
    }) as GuardStarter,
  };
  return g;
}

describe('announcer', () => {
  it('adds and removes network statements through vtysh, state follows', async () => {
    const calls: string[][] = [];
    const exec: Exec = async (_f, args) => {
      calls.push(args);
      return '';
    };
    const g = guards();
    const a = new BgpAnnouncer(cfg, ['203.0.113.80'], quiet, exec, g.start);
    expect(a.state()).toBe('withdrawn');
    await a.announce();
    expect(a.state()).toBe('announced');
    // armed with the withdrawal, once
    await a.announce();
    expect(g.armed).toHaveLength(1);
    expect(g.armed[0]?.at(-3)).toBe('no network 203.0.113.80/32');
    expect(calls[0]).toEqual([
      '--vty_socket',
      '/run/frr-gw',
      '-c',
      'configure terminal',
      '-c',
      'router bgp 64601',
      '-c',
      'address-family ipv4 unicast',
      '-c',
      'network 203.0.113.80/32',
      '-c',
      'exit-address-family',
    ]);
    await a.withdraw();
    expect(a.state()).toBe('withdrawn');
    expect(calls.at(-1)?.at(-3)).toBe('no network 203.0.113.80/32');
    expect(g.disarmed).toBe(1);
  });

  it('a withdrawal bgpd refused keeps the guard armed', async () => {
    let refuse = false;
    const exec: Exec = async () => (refuse ? '% not now\n' : '');
    const g = guards();
    const a = new BgpAnnouncer(cfg, ['203.0.113.80'], quiet, exec, g.start);
    await a.announce();
    refuse = true;
    await expect(a.withdraw()).rejects.toThrow(/bgpd: % not now/);
    expect(g.armed).toHaveLength(1);
    expect(g.disarmed).toBe(0);
  });

  it('a refusal ("% …") leaves the state and is retried; withdraw stops the retry', async () => {
    let n = 0;
    const exec: Exec = async () => (n++ === 0 ? '% BGP instance not found\n' : '');
    const g = guards();
    const a = new BgpAnnouncer(cfg, ['203.0.113.80'], quiet, exec, g.start);
    await a.announce();
    expect(a.state()).toBe('withdrawn');
    expect(g.armed).toHaveLength(0);
    await a.withdraw();
    expect(a.state()).toBe('withdrawn');
    expect(n).toBe(1);
  });

  it('off without announce; both families, each in its own address family', () => {
    const text = `
name: gw
outside: { interfaces: [eth0] }
interconnect: { interface: eth1, address: 198.18.0.1 }
control: { listen: 198.18.0.1:7443, tls: { ca: a, cert: b, key: c }, store: s.json }
clusterAddresses: [{ network: outside, address: 203.0.113.80 }, { network: outside, address: 2001:db8::80 }]
`;
    expect(makeAnnouncer(parseGatewayConfig(text), quiet).state()).toBe('off');
    const on = parseGatewayConfig(
      `${text}announce: { asn: 64601, vtySocket: /run/frr, peers: [203.0.113.2] }\n`,
    );
    const calls: string[][] = [];
    const a = makeAnnouncer(
      on,
      quiet,
      async (_f, args) => {
        calls.push(args);
        return '';
      },
      guards().start,
    );
    expect(a.state()).toBe('withdrawn');
    return a
      .announce()
      .then(() =>
        expect(calls[0]?.filter((x) => x !== '-c').slice(4)).toEqual([
          'address-family ipv4 unicast',
          'network 203.0.113.80/32',
          'exit-address-family',
          'address-family ipv6 unicast',
          'network 2001:db8::80/128',
          'exit-address-family',
        ]),
      );
  });
});

describe('the withdraw guard (a real child process)', () => {
  // a process that arms a guard writing a file, then either dies (SIGKILL) or disarms and exits
  const armer = (file: string, disarm: boolean) => `
    import('${new URL('./announce.js', import.meta.url).pathname.replace(/\.ts$/, '.js').replace('/src/', '/dist/')}').then((m) => {
      const g = m.spawnGuard('sh', ['-c', 'echo withdrawn > ${file}']);
      if (${disarm}) { g.disarm(); process.exit(0); }
      process.stdout.write('armed\\n');
    });
    setInterval(() => undefined, 1000);
  `;

  it('runs the withdrawal when the process that armed it is killed with SIGKILL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onehost-guard-'));
    try {
      const file = join(dir, 'out');
      const p = spawn(process.execPath, ['-e', armer(file, false)], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => p.stdout.once('data', () => resolve()));
      expect(existsSync(file)).toBe(false);
      p.kill('SIGKILL');
      await waitFor(async () => existsSync(file), {
        what: 'the guard withdrew',
        timeoutMs: 5000,
        intervalMs: 20,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('disarmed, it is gone and runs nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onehost-guard-'));
    try {
      const file = join(dir, 'out');
      const p = spawn(process.execPath, ['-e', armer(file, true)], { stdio: 'ignore' });
      const code = await new Promise<number | null>((resolve) => p.once('exit', (c) => resolve(c)));
      expect(code).toBe(0);
      // no process of the guard's group is left to write the file later
      const left = spawn('pgrep', ['-f', `echo withdrawn > ${file}`]);
      const found = await new Promise<number | null>((resolve) => left.once('exit', (c) => resolve(c)));
      expect(found).toBe(1);
      expect(existsSync(file)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
