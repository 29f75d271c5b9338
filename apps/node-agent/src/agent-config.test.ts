import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AGENT_CONFIG_KEYS, AgentConfigError, parseAgentConfig } from './agent-config.js';
import { buildAgentProgram } from './daemon-cli.js';

const EXAMPLE = fileURLToPath(new URL('../../../infra/etc/agent.yaml', import.meta.url));

describe('agent configuration file', () => {
  it('the example file is valid, with file names taken relative to its directory', () => {
    const c = parseAgentConfig(readFileSync(EXAMPLE, 'utf8'), '/etc/onehost/agent.yaml');
    expect(c).toMatchObject({
      gateway: '198.18.0.1:7443',
      name: 'n1',
      internalAddress: '198.18.0.11',
      ca: '/etc/onehost/pki/ca.pem',
      key: '/etc/onehost/pki/n1-key.pem',
    });
    expect(c.healthChecks?.[0]).toMatchObject({ name: 'web', kind: 'http', port: 80 });
  });

  it('has a key for every flag of onehost-agent', () => {
    const flags = buildAgentProgram(async () => {})
      .options.map((o) => o.attributeName())
      .filter((k) => !['config', 'version', 'healthChecks'].includes(k));
    expect(flags.filter((k) => !(AGENT_CONFIG_KEYS as string[]).includes(k))).toEqual([]);
  });

  it('checks each key as its flag is, naming the file and the key', () => {
    const bad = (text: string) => {
      try {
        parseAgentConfig(text, 'a.yaml');
      } catch (e) {
        expect(e).toBeInstanceOf(AgentConfigError);
        return (e as Error).message;
      }
      return 'accepted';
    };
    expect(bad('name: N1')).toBe('a.yaml: name: use 1-63 of a-z 0-9 and -, not starting or ending with -');
    expect(bad('mountCheckMs: ten')).toBe('a.yaml: mountCheckMs: expected milliseconds from 50 to 3600000');
    expect(bad('capability: vxlan')).toBe('a.yaml: capability: expected a list');
    expect(bad('spliceCapture: [2049, 0]')).toBe('a.yaml: spliceCapture[1]: expected a port, 1-65535');
    expect(bad('logLevel: loud')).toBe(
      'a.yaml: logLevel: expected one of fatal, error, warn, info, debug, trace',
    );
    expect(bad('name: n1\nname: n2')).toMatch(/^a\.yaml: not YAML: /);
    expect(bad('')).toBe('accepted');
  });

  it('never throws anything but AgentConfigError on random text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        try {
          parseAgentConfig(text, 'x.yaml');
        } catch (e) {
          if (!(e instanceof AgentConfigError)) throw e;
        }
      }),
      { numRuns: 20_000 },
    );
  });

  it('never throws anything but AgentConfigError on mutated valid files', () => {
    const keys = fc.constantFrom(...AGENT_CONFIG_KEYS);
    const values = fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.oneof(fc.string({ maxLength: 8 }), fc.integer()), { maxLength: 3 }),
      fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.string({ maxLength: 8 }), fc.integer())),
    );
    fc.assert(
      fc.property(fc.dictionary(keys, values), (doc) => {
        try {
          parseAgentConfig(JSON.stringify(doc), 'x.yaml');
        } catch (e) {
          if (!(e instanceof AgentConfigError)) throw e;
        }
      }),
      { numRuns: 20_000 },
    );
  });
});
