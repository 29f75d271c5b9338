import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MemberRecord } from '@onehost/control';
import { MessageSwitch } from '@onehost/switch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewaySwitch } from '../backend.js';
import { parseGatewayConfig } from '../config.js';
import { EventLog } from './events.js';
import { RateHistory } from './history.js';
import { StatusRoutes } from './server.js';
import type { StatusState } from './state.js';

const cfg = parseGatewayConfig(`
name: gw
outside: { interfaces: [eth0] }
interconnect: { interface: eth1, address: 198.18.0.1 }
control: { listen: 198.18.0.1:7443, tls: { ca: a, cert: b, key: c }, store: s }
clusterAddresses: [{ network: outside, address: 203.0.113.80, default: true }]
entries:
  - { protocol: tcp, port: 80, function: connection, policy: round-robin, nodes: [n1, n2] }
  - { protocol: tcp, port: 22, function: fixed, node: n2, backup: n1 }
`);

const member = (name: string, id: number, state: MemberRecord['state'] = 'active'): MemberRecord => ({
  name,
  id,
  block: { lo: 32768 + id * 1024, hi: 32768 + id * 1024 + 1023 },
  internalAddress: `198.18.0.${10 + id}`,
  vxlanMac: `02:00:00:00:00:0${id}`,
  capabilities: [],
  drained: false,
  state,
  lastSeenUnixMs: 0,
  downReason: state === 'down' ? 'heartbeat timeout' : '',
});

const members = [member('n1', 1), member('n2', 2, 'down')];
const backend = new GatewaySwitch(new MessageSwitch(), cfg);
backend.setMembership(members, []);
const rates = new RateHistory(10);
rates.sample(1000, [[1, 0, 0]]);
rates.sample(3000, [[1, 2000, 3_000_000]]);
const events = new EventLog();
events.member({ kind: 'down', member: members[1]! });
const routes = new StatusRoutes({
  name: 'gw',
  datapath: 'tun',
  clusterAddresses: ['203.0.113.80'],
  members: () => members,
  healthOf: () => [],
  skippedFor: () => [],
  exports: () => [],
  entries: () => backend.listEntries(),
  connections: (limit) => backend.listConnections({ limit }),
  explain: (packet) => backend.explain(packet, { updateTables: false }),
  rates,
  events,
});

let server: Server;
let base: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    if (!routes.handle(req, res)) res.writeHead(404).end('not the page\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  routes.close();
  await new Promise((r) => server.close(r));
});

describe('status routes', () => {
  it('serve the page with a policy that allows nothing from elsewhere', async () => {
    const r = await fetch(`${base}/status`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await r.text()).toContain("new EventSource('/status/stream')");
  });

  it('give the state: members with rates, entries, events', async () => {
    const s = (await (await fetch(`${base}/status/state`)).json()) as StatusState;
    expect(s.gateway).toMatchObject({ name: 'gw', datapath: 'tun', clusterAddresses: ['203.0.113.80'] });
    expect(s.members.map((m) => [m.name, m.state, m.block])).toEqual([
      ['n1', 'active', '33792-34815'],
      ['n2', 'down', '34816-35839'],
    ]);
    expect(s.members[0]!.rate).toEqual({ pps: 1000, bps: 1_500_000 });
    expect(s.entries.map((e) => [e.key, e.function])).toEqual([
      ['tcp/80', 'connection'],
      ['tcp/22', 'fixed'],
    ]);
    expect(s.events[0]!.text).toBe('n2 down: heartbeat timeout');
  });

  it('explain a flow from the form, and name a bad field', async () => {
    const q = 'protocol=tcp&src=203.0.113.10&sport=40000&dst=203.0.113.80&dport=22&flags=S';
    const r = (await (await fetch(`${base}/status/explain?${q}`)).json()) as {
      decision: { nodeName: string };
    };
    expect(r.decision.nodeName).toBe('n1'); // n2 is down: the backup
    const bad = await fetch(`${base}/status/explain?${q.replace('sport=40000', 'sport=70000')}`);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: 'sport: must be a port 0-65535' });
    const flags = await fetch(`${base}/status/explain?${q.replace('flags=S', 'flags=SS')}`);
    expect(await flags.json()).toEqual({ error: 'flags: letters from FSRPAU, each once' });
  });

  it('push the state to an open page, and leave other paths alone', async () => {
    const ac = new AbortController();
    const r = await fetch(`${base}/status/stream`, { signal: ac.signal });
    expect(r.headers.get('content-type')).toBe('text/event-stream');
    const reader = r.body!.getReader();
    let text = '';
    while (!text.includes('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
    const first = JSON.parse(text.slice('data: '.length, text.indexOf('\n\n'))) as StatusState;
    expect(first.gateway.name).toBe('gw');
    ac.abort();
    expect((await fetch(`${base}/status/nope`)).status).toBe(404);
    expect((await fetch(`${base}/status`, { method: 'POST' })).status).toBe(405);
    expect(await (await fetch(`${base}/metrics`)).text()).toBe('not the page\n');
  });
});
