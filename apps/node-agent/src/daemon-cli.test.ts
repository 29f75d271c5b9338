import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClusterCa, issueCertificate } from '@onehost/control';
import { Lab, requireRoot } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

function agent(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return agentIn([], ...args);
}

/** agentIn runs the agent under `prefix` (e.g. `ip netns exec NAME`) to its end. */
function agentIn(
  prefix: string[],
  ...args: string[]
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [file, ...rest] = [...prefix, 'node', MAIN, ...args];
  return new Promise((resolve) => {
    execFile(file!, rest, { timeout: 10_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
  });
}

// Flags and files are checked before anything touches the network or the kernel.
describe('onehost-agent flags', () => {
  let dir: string;
  let good: string[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'onehost-agent-cli-'));
    const ca = await createClusterCa();
    const [n1, op] = await Promise.all([
      issueCertificate(ca, { role: 'node', name: 'n1' }),
      issueCertificate(ca, { role: 'operator', name: 'alice' }),
    ]);
    const files: Record<string, string> = {
      'ca.pem': ca.certPem,
      'n1.pem': n1.certPem,
      'n1-key.pem': n1.keyPem,
      'alice.pem': op.certPem,
      'alice-key.pem': op.keyPem,
      'junk.pem': 'not a certificate\n',
    };
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
    good = [
      ...['--gateway', '127.0.0.1:7443', '--name', 'n1', '--internal-address', '198.18.0.11'],
      ...['--ca', join(dir, 'ca.pem'), '--cert', join(dir, 'n1.pem'), '--key', join(dir, 'n1-key.pem')],
    ];
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const withFlag = (flag: string, value: string) => {
    const args = [...good];
    args[args.indexOf(flag) + 1] = value;
    return args;
  };

  it('--help describes every flag and the exit codes, exit 0', async () => {
    const r = await agent('--help');
    expect(r.code).toBe(0);
    for (const flag of [
      '--gateway',
      '--name',
      '--ca',
      '--cert',
      '--key',
      '--internal-address',
      '--interface',
      '--ganesha-config',
      '--export',
      '--rpcbind',
      '--handle-layout',
      '--mount-check-ms',
      '--config',
    ])
      expect(r.stdout).toContain(flag);
    expect(r.stdout).toContain('{"msg":"ready"}');
    expect(r.stdout).toMatch(/Exit status: 0 .* 1 .* 2 bad flags/s);
  });

  it.each([
    [['--gateway', 'gw'], "option '--gateway <host:port>' argument 'gw' is invalid"],
    [
      ['--gateway', '198.18.0.1:70000'],
      "option '--gateway <host:port>' argument '198.18.0.1:70000' is invalid",
    ],
    [['--name', 'N1'], "option '--name <node>' argument 'N1' is invalid"],
    [['--internal-address', '198.18.0'], "option '--internal-address <ipv4>' argument '198.18.0' is invalid"],
  ])('a bad value (%j) exits 2 naming the flag', async ([flag, value], message) => {
    const r = await agent(...withFlag(flag!, value!));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it.each([
    [['--export', 'srv/a=1'], "option '--export <path=id>' argument 'srv/a=1' is invalid"],
    [['--export', '/srv/a'], "option '--export <path=id>' argument '/srv/a' is invalid"],
    [
      ['--handle-layout', '2:5:big'],
      "option '--handle-layout <offset:length:endian>' argument '2:5:big' is invalid",
    ],
    [
      ['--handle-layout', '62:4:big'],
      "option '--handle-layout <offset:length:endian>' argument '62:4:big' is invalid",
    ],
    [['--rpcbind', 'localhost'], "option '--rpcbind <host:port>' argument 'localhost' is invalid"],
    [['--mount-check-ms', '10'], "option '--mount-check-ms <ms>' argument '10' is invalid"],
  ])('a bad MOUNT flag (%j) exits 2 naming it', async ([flag, value], message) => {
    const r = await agent(...good, flag!, value!);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });

  it('an unreadable or unusable nfs-ganesha configuration exits 2 naming --ganesha-config and the line', async () => {
    const missing = await agent(...good, '--ganesha-config', join(dir, 'nope.conf'));
    expect([missing.code, missing.stderr.trim()]).toEqual([
      2,
      `onehost-agent: --ganesha-config: ${join(dir, 'nope.conf')}: ENOENT`,
    ]);
    await writeFile(join(dir, 'bad.conf'), 'NFS_CORE_PARAM { Protocols = 3; }\nEXPORT { Path = /srv/a; }\n');
    const bad = await agent(...good, '--ganesha-config', join(dir, 'bad.conf'));
    expect([bad.code, bad.stderr.trim()]).toEqual([
      2,
      `onehost-agent: --ganesha-config: ${join(dir, 'bad.conf')}:2: EXPORT without a numeric Export_Id`,
    ]);
  });

  it('a missing required flag exits 2 naming it', async () => {
    const r = await agent(...good.slice(2));
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(
      'onehost-agent: --gateway: required: give --gateway, or gateway in the --config file',
    );
  });

  it('--config: every setting from a YAML file (files relative to it), flags winning over it', async () => {
    requireRoot();
    await writeFile(
      join(dir, 'agent.yaml'),
      [
        'gateway: 127.0.0.1:7443',
        'name: n1',
        'internalAddress: 198.18.0.11',
        'ca: ca.pem',
        'cert: n1.pem',
        'key: n1-key.pem',
        'stateFile: state/n1.json',
        'export: [{ path: /srv/a, exportId: 1 }]',
        'mountCheckMs: 500',
        'splice: false',
        'healthChecks:',
        '  - { name: web, kind: tcp, port: 80, covers: [tcp/80] }',
      ].join('\n'),
    );
    const lab = new Lab();
    let fromFile: Awaited<ReturnType<typeof agent>>;
    let flagWins: Awaited<ReturnType<typeof agent>>;
    try {
      // no interface has the address: the agent stops right after reading every setting and file
      const ns = await lab.netns();
      fromFile = await agentIn(['ip', 'netns', 'exec', ns.name], '--config', join(dir, 'agent.yaml'));
      flagWins = await agentIn(
        ['ip', 'netns', 'exec', ns.name],
        '--config',
        join(dir, 'agent.yaml'),
        '--internal-address',
        '198.18.0.12',
      );
    } finally {
      await lab.cleanup();
    }
    expect([fromFile.code, fromFile.stderr.trim()]).toEqual([
      2,
      'onehost-agent: --internal-address: 198.18.0.11 is not an address of any interface',
    ]);
    expect(flagWins.stderr.trim()).toBe(
      'onehost-agent: --internal-address: 198.18.0.12 is not an address of any interface',
    );
  });

  it.each([
    ['internalAddress: 198.18.0', 'internalAddress: expected an IPv4 address, e.g. 198.18.0.11'],
    ['intrenalAddress: 198.18.0.11', 'intrenalAddress: unknown key'],
    ['internal-address: 198.18.0.11', 'internal-address: unknown key (did you mean internalAddress?)'],
    ['splicePort: 70000', 'splicePort: expected a port, 1-65535'],
    ['export: [{ path: srv, exportId: 1 }]', 'export[0]: expected <absolute path>=<export id>'],
    ['healthChecks: [{ name: web, kind: tcp }]', 'healthChecks[0]'],
    ['- a list', 'expected a mapping of keys'],
    ['gateway: [', 'not YAML'],
  ])('a bad --config file (%s) exits 2 naming the file and the key', async (line, message) => {
    const f = join(dir, 'bad-agent.yaml');
    await writeFile(f, `${line}\n`);
    const r = await agent('--config', f);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`onehost-agent: --config: ${f}: ${message}`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('unreadable or wrong PEM files exit 2 naming the flag', async () => {
    const missing = await agent(...withFlag('--ca', join(dir, 'nope.pem')));
    expect([missing.code, missing.stderr.trim()]).toEqual([
      2,
      `onehost-agent: --ca: cannot read ${join(dir, 'nope.pem')}: ENOENT`,
    ]);
    const junk = await agent(...withFlag('--cert', join(dir, 'junk.pem')));
    expect([junk.code, junk.stderr.trim()]).toEqual([
      2,
      `onehost-agent: --cert: ${join(dir, 'junk.pem')} is not a PEM file`,
    ]);
    const operator = await agent(
      ...withFlag('--cert', join(dir, 'alice.pem')).map((a) =>
        a.endsWith('n1-key.pem') ? join(dir, 'alice-key.pem') : a,
      ),
    );
    expect([operator.code, operator.stderr.trim()]).toEqual([
      2,
      `onehost-agent: --cert: ${join(dir, 'alice.pem')} is the certificate of operator alice, not of node n1 (--name)`,
    ]);
    const otherKey = await agent(...withFlag('--key', join(dir, 'alice-key.pem')));
    expect([otherKey.code, otherKey.stderr.trim()]).toEqual([
      2,
      `onehost-agent: --key: ${join(dir, 'alice-key.pem')} is not the private key of ${join(dir, 'n1.pem')} (--cert)`,
    ]);
  });

  it('an internal address no interface has exits 2 naming --internal-address', async () => {
    requireRoot();
    // In an empty namespace of its own: were the address there, the agent would go on and configure it.
    const lab = new Lab();
    let r: Awaited<ReturnType<typeof agent>>;
    try {
      const ns = await lab.netns();
      r = await agentIn(['ip', 'netns', 'exec', ns.name], ...good);
    } finally {
      await lab.cleanup();
    }
    expect([r.code, r.stderr.trim()]).toEqual([
      2,
      'onehost-agent: --internal-address: 198.18.0.11 is not an address of any interface',
    ]);
  });
});
