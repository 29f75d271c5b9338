import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXAMPLE_YAML, tcp6Packet, tcpPacket, toHex } from '@onehost/switch/testing';
import { describe, expect, it } from 'vitest';
import { buildProgram } from './program.js';
import { pcap } from './testing/capture-builder.js';

const dir = mkdtempSync(join(tmpdir(), 'onehostctl-'));
const config = join(dir, 'cluster.yaml');
writeFileSync(config, EXAMPLE_YAML);
const EXAMPLE = new URL('../../../packages/switch/examples/cluster.yaml', import.meta.url).pathname;

async function run(...args: string[]): Promise<{ code: number; out: string[]; err: string[]; help: string }> {
  const out: string[] = [];
  const err: string[] = [];
  let help = '';
  let code = -1;
  const program = buildProgram({ out: (l) => out.push(l), err: (l) => err.push(l) }, (c) => {
    code = c;
  });
  program.exitOverride();
  program.configureOutput({ writeOut: (s) => (help += s), writeErr: (s) => err.push(s) });
  for (const c of program.commands) {
    c.exitOverride();
    c.configureOutput({ writeOut: (s) => (help += s), writeErr: (s) => err.push(s) });
  }
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (e) {
    code = (e as { exitCode?: number }).exitCode ?? 99;
  }
  return { code, out, err, help };
}

const c = '203.0.113.5';
const vip = '203.0.113.10';
const syn = tcpPacket({ src: c, dst: vip, srcPort: 40000, dstPort: 80, flags: 2, seq: 9 });
const ack = tcpPacket({ src: c, dst: vip, srcPort: 40000, dstPort: 80, flags: 16, seq: 10 });

describe('onehostctl explain', () => {
  it('--packet prints one JSON line with the decision and the trace', async () => {
    const r = await run('explain', '--config', config, '--packet', toHex(syn), '--now', '0');
    expect(r.code).toBe(0);
    expect(r.out).toHaveLength(1);
    const line = JSON.parse(r.out[0]!);
    expect(line.decision).toEqual({ kind: 'forward', node: 2, nodeName: 'n1' });
    expect(line.trace[0]).toMatch(/^515 /);
    expect(line.summary).toMatchObject({ protocol: 'tcp', dstPort: 80, flags: 'SYN' });
  });

  it('--flow explains a described flow', async () => {
    const r = await run('explain', '--config', config, '--flow', 'tcp 203.0.113.5:40000 203.0.113.10:22 ack');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out[0]!).decision).toEqual({ kind: 'forward', node: 2, nodeName: 'n1' });
    const bad = await run('explain', '--config', config, '--flow', 'sctp 203.0.113.5:1 203.0.113.10:22');
    expect(bad.code).toBe(2);
    expect(bad.err[0]).toMatch(/--flow: protocol must be tcp or udp, got "sctp"/);
  });

  it('works with the documented example config', async () => {
    const r = await run('explain', '-c', EXAMPLE, '-p', toHex(syn));
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out[0]!).decision.kind).toBe('forward');
  });

  it('--pcap prints a line per packet; the capture shares the tables (SYN then ACK) and its clock', async () => {
    const file = join(dir, 'flow.pcap');
    writeFileSync(
      file,
      pcap(
        [syn, ack, new Uint8Array(10)].map((p) => p),
        { linkType: 101 },
      ),
    );
    const r = await run('explain', '--config', config, '--pcap', file);
    expect(r.code).toBe(0);
    expect(r.out).toHaveLength(3);
    const [a, b, x] = r.out.map((l) => JSON.parse(l));
    expect(a.decision.kind).toBe('forward');
    expect(b.decision).toEqual(a.decision);
    expect(b.time).toBe('2023-11-14T22:13:21.500Z');
    expect(x).toMatchObject({ packet: 2, skipped: 'not IP (version 0)' });
  });

  it('--pcap explains IPv6 packets against an IPv6 cluster address', async () => {
    const dual = join(dir, 'dual.yaml');
    writeFileSync(
      dual,
      EXAMPLE_YAML.replace(
        '  - { network: outside, address: 203.0.113.10, default: true }\n',
        '  - { network: outside, address: 203.0.113.10, default: true }\n  - { network: outside, address: "2001:db8:113::10" }\n',
      ),
    );
    const syn6 = tcp6Packet({
      src: '2001:db8:113::5',
      dst: '2001:db8:113::10',
      srcPort: 40000,
      dstPort: 80,
      flags: 2,
    });
    const file = join(dir, 'v6.pcap');
    writeFileSync(file, pcap([syn6, syn], { linkType: 101 }));
    const r = await run('explain', '--config', dual, '--pcap', file);
    expect(r.code).toBe(0);
    const [six, four] = r.out.map((l) => JSON.parse(l));
    expect(six.decision.kind).toBe('forward');
    expect(six.trace[0]).toBe('515 2001:db8:113::10 is the IPv6 cluster address of outside (default)');
    expect(six.summary).toMatchObject({ protocol: 'tcp', src: '2001:db8:113::5', dstPort: 80 });
    expect(four.decision.kind).toBe('forward');
    // the same flow described: IPv6 endpoints in brackets
    const f = await run(
      'explain',
      '--config',
      dual,
      '--flow',
      'tcp [2001:db8:113::5]:40000 [2001:db8:113::10]:80',
    );
    expect(f.code).toBe(0);
    expect(JSON.parse(f.out[0]!).decision).toEqual(six.decision);
  });

  it('--dry-run keeps each packet independent', async () => {
    const file = join(dir, 'dry.pcap');
    writeFileSync(file, pcap([syn, ack], { linkType: 101 }));
    const r = await run('explain', '--config', config, '--pcap', file, '--dry-run');
    expect(JSON.parse(r.out[1]!).decision).toEqual({ kind: 'drop', reason: 'no_connection' });
  });

  it('reports config problems with file, line and field, exit 2', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, EXAMPLE_YAML.replace('policy: round-robin', 'policy: rr'));
    const r = await run('explain', '--config', bad, '--packet', toHex(syn));
    expect(r.code).toBe(2);
    expect(r.out).toEqual([]);
    expect(r.err[0]).toMatch(
      /bad\.yaml:\d+:\d+: entries\[0\]\.policy: must be one of round-robin, maglev, least-conn/,
    );
  });

  it('refuses bad usage with exit 2', async () => {
    expect((await run('explain', '--config', config)).code).toBe(2);
    expect((await run('explain', '--config', config, '--packet', 'zz')).code).toBe(2);
    expect((await run('explain', '--config', join(dir, 'missing.yaml'), '--packet', '45')).code).toBe(2);
    expect((await run('explain', '--config', config, '--pcap', config)).err.join('')).toMatch(
      /not a pcap or pcapng file/,
    );
    const live = await run('explain', '--config', config, '--packet', toHex(syn), '--update-tables');
    expect([live.code, live.err]).toEqual([
      2,
      ['onehostctl explain: --update-tables works live only (with --gateway)'],
    ]);
    const both = await run('explain', '--config', config, '--packet', '45', '--pcap', 'x');
    expect(both.err.join('')).toMatch(/cannot be used with/);
    expect((await run('explain', '--packet', '45')).err.join('')).toMatch(
      /give --config <file.yaml> \(offline\) or --gateway <host:port> \(live\)/,
    );
    expect((await run('explain', '--config', config, '--packet', '45', '--now', '-5')).err.join('')).toMatch(
      /non-negative/,
    );
  });

  it('--help tells the options the code has', async () => {
    const r = await run('explain', '--help');
    for (const opt of [
      '--config <file.yaml>',
      '--packet <hex>',
      '--pcap <file>',
      '--flow <flow>',
      '--now <ms>',
      '--dry-run',
    ])
      expect(r.help).toContain(opt);
  });
});
