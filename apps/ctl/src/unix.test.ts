import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXAMPLE_YAML, tcpPacket } from '@onehost/switch/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { pcap } from './testing/capture-builder.js';

// The built binary, as an operator runs it (the build comes before the tests).
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'onehostctl-unix-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function sh(script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', script], { timeout: 60_000 }, (e, stdout, stderr) =>
      resolve({ code: e ? ((e as { code?: number }).code ?? -1) : 0, stdout, stderr }),
    );
  });
}

describe('onehostctl as a Unix tool', () => {
  it('stops quietly with exit 0 when its reader goes away (| head)', async () => {
    const config = join(dir, 'cluster.yaml');
    writeFileSync(config, EXAMPLE_YAML);
    // Far more output than a pipe holds, so writes go on after head has gone.
    const frames = Array.from({ length: 4000 }, (_, i) =>
      tcpPacket({
        src: '203.0.113.5',
        dst: '203.0.113.10',
        srcPort: 1024 + i,
        dstPort: 80,
        flags: 2,
        seq: i,
      }),
    );
    const capture = join(dir, 'many.pcap');
    writeFileSync(capture, pcap(frames, { linkType: 101 }));
    const r = await sh(
      `set -o pipefail; node ${JSON.stringify(MAIN)} explain --config ${JSON.stringify(config)} --pcap ${JSON.stringify(capture)} | head -2`,
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(2);
  });

  it('prints the version from package.json', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    const r = await sh(`node ${JSON.stringify(MAIN)} --version`);
    expect(r).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: '' });
  });

  it('has its bin and the daemons linked in the workspace after install and build (npx works)', async () => {
    for (const bin of ['onehostctl', 'onehost-gateway', 'onehost-agent', 'onehost-agent-net'])
      expect(existsSync(join(ROOT, 'node_modules/.bin', bin)), bin).toBe(true);
    const r = await sh(`cd ${JSON.stringify(ROOT)} && npx --no-install onehostctl --help`);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: onehostctl/);
  });
});
