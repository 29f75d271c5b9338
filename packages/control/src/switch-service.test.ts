import { status } from '@grpc/grpc-js';
import { DecisionKind, MemberState, Transport } from '@onehost/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMembership, connectSwitch, type SwitchConnection } from './client.js';
import { buildFlowPacket } from './flow-packet.js';
import type { ControlServer } from './server.js';
import { codeOf, joinRequest, startTestServer, tlsOf } from './testing/harness.js';
import { makeTestPki, type TestPki } from './testing/pki.js';
import { SwitchDocBackend } from './testing/switch-backend.js';

const doc = () => ({
  gateway: 'gw',
  clusterAddresses: [
    { network: 'outside', address: '203.0.113.10', default: true },
    { network: 'outside', address: '2001:db8::10' },
  ],
  nodes: [
    { id: 1, name: 'n1', address: '198.18.0.11' },
    { id: 2, name: 'n2', address: '198.18.0.12' },
    { id: 3, name: 'n3', address: '198.18.0.13' },
    { id: 4, name: 'gw', address: '198.18.0.1' },
  ],
  entries: [
    {
      protocol: 'tcp',
      port: 80,
      function: 'connection',
      policy: 'round-robin',
      nodes: ['n1', 'n2', 'n3'],
      maxEntries: 1024,
    },
    { protocol: 'tcp', port: 22, function: 'fixed', node: 'n1' },
  ],
});

const syn = (srcPort: number, dstPort: number) => ({
  protocol: Transport.TRANSPORT_TCP,
  srcAddress: '203.0.113.7',
  srcPort,
  dstAddress: '203.0.113.10',
  dstPort,
  tcpFlags: 'S',
  payload: Buffer.alloc(0),
});

let pki: TestPki;
let server: ControlServer;
let backend: SwitchDocBackend;
let op: SwitchConnection;

beforeAll(async () => {
  pki = await makeTestPki();
  backend = new SwitchDocBackend(doc());
  server = await startTestServer(pki, { switchBackend: backend });
  op = connectSwitch(`127.0.0.1:${server.port}`, tlsOf(pki.operator));
});
afterAll(async () => {
  op.close();
  await server.close();
});

describe('Switch service over the real message switch', () => {
  it('explains a flow: a SYN to the connection manager goes round robin, and only when asked to update', async () => {
    const dry = await op.explain({ input: { $case: 'flow', value: syn(40000, 80) }, updateTables: false });
    expect(dry.decision?.kind).toBe(DecisionKind.DECISION_KIND_FORWARD);
    expect(dry.trace.length).toBeGreaterThan(0);
    expect(dry.packet).toMatchObject({
      protocol: 'tcp',
      src: '203.0.113.7',
      dst: '203.0.113.10',
      dstPort: 80,
    });
    expect((await op.listConnections()).total).toBe(0);

    const nodes: string[] = [];
    for (const port of [40001, 40002, 40003]) {
      const r = await op.explain({ input: { $case: 'flow', value: syn(port, 80) }, updateTables: true });
      nodes.push(r.decision!.nodeName);
    }
    expect(new Set(nodes).size).toBe(3);
    const conns = await op.listConnections({ protocol: Transport.TRANSPORT_TCP, port: 80 });
    expect(conns.total).toBe(3);
    expect(conns.connections.map((c) => c.srcPort).sort()).toEqual([40001, 40002, 40003]);
    expect(conns.connections.every((c) => c.state === 'syn' && c.srcAddress === '203.0.113.7')).toBe(true);
    const onlyN1 = await op.listConnections({ nodeName: nodes[0]!, limit: 1 });
    expect([onlyN1.total, onlyN1.connections.length]).toEqual([1, 1]);
  });

  it('explains an IPv6 flow', async () => {
    const six = { ...syn(40000, 22), srcAddress: '2001:db8:1::7', dstAddress: '2001:db8::10' };
    const r = await op.explain({ input: { $case: 'flow', value: six }, updateTables: false });
    expect(r.decision).toMatchObject({ kind: DecisionKind.DECISION_KIND_FORWARD, nodeName: 'n1' });
    expect(r.trace[0]).toBe('515 2001:db8::10 is the IPv6 cluster address of outside (default)');
  });

  it('explains a packet given in hex the same way as the flow', async () => {
    const hex = Buffer.from(buildFlowPacket({ ...syn(41000, 22), protocol: 'tcp' })).toString('hex');
    const r = await op.explain({
      input: { $case: 'packetHex', value: hex.replace(/(..)/g, '$1 ') },
      updateTables: false,
    });
    expect(r.decision).toMatchObject({ kind: DecisionKind.DECISION_KIND_FORWARD, nodeName: 'n1', nodeId: 1 });
  });

  it('refuses bad explain input naming the field', async () => {
    expect(
      await codeOf(op.explain({ input: { $case: 'packetHex', value: '45 0g' }, updateTables: false })),
    ).toEqual({
      code: status.INVALID_ARGUMENT,
      details: 'packet_hex: not hex',
    });
    expect(await codeOf(op.explain({ input: undefined, updateTables: false }))).toEqual({
      code: status.INVALID_ARGUMENT,
      details: 'input: required: packet_hex or flow',
    });
    const bad = { ...syn(40000, 80), dstAddress: '203.0.113' };
    expect(
      (await codeOf(op.explain({ input: { $case: 'flow', value: bad }, updateTables: false }))).details,
    ).toBe('flow.dst_address: not an IPv4 or IPv6 address: "203.0.113"');
    const mixed = { ...syn(40000, 80), dstAddress: '2001:db8::10' };
    expect(
      (await codeOf(op.explain({ input: { $case: 'flow', value: mixed }, updateTables: false }))).details,
    ).toBe("flow.dst_address: not of src_address's family (IPv4)");
    const flags = { ...syn(40000, 80), tcpFlags: 'SX' };
    expect(
      (await codeOf(op.explain({ input: { $case: 'flow', value: flags }, updateTables: false }))).details,
    ).toBe('flow.tcp_flags: letters of "FSRPAU", each once');
    // a truncated packet is the switch's to judge: explained as a drop, not refused
    const cut = await op.explain({ input: { $case: 'packetHex', value: '4500' }, updateTables: false });
    expect(cut.decision?.kind).toBe(DecisionKind.DECISION_KIND_DROP);
  });

  it('sets, lists and deletes entries; the switch refuses bad options with its field-precise issue', async () => {
    const before = await op.listEntries();
    const v = await op.setEntry({
      protocol: Transport.TRANSPORT_TCP,
      port: 25,
      function: 'fixed',
      options: { node: 'n2' },
    });
    expect(v).toBeGreaterThan(before.version);
    const after = await op.listEntries();
    expect(after.entries).toContainEqual({
      protocol: Transport.TRANSPORT_TCP,
      port: 25,
      function: 'fixed',
      options: { node: 'n2' },
    });
    const r = await op.explain({ input: { $case: 'flow', value: syn(40100, 25) }, updateTables: false });
    expect(r.decision?.nodeName).toBe('n2');

    const refused = await codeOf(
      op.setEntry({
        protocol: Transport.TRANSPORT_TCP,
        port: 26,
        function: 'fixed',
        options: { node: 'n9' },
      }),
    );
    expect(refused.code).toBe(status.INVALID_ARGUMENT);
    expect(refused.details).toMatch(/n9/);
    expect((await codeOf(op.setEntry({ protocol: 0, port: 26, function: 'fixed' }))).details).toBe(
      'entry.protocol: required: TRANSPORT_TCP or TRANSPORT_UDP',
    );
    expect(
      (await codeOf(op.setEntry({ protocol: Transport.TRANSPORT_UDP, port: 70000, function: 'fixed' })))
        .details,
    ).toBe('entry.port: not a port (1-65535): 70000');

    await op.deleteEntry(Transport.TRANSPORT_TCP, 25);
    expect((await op.listEntries()).entries.some((e) => e.port === 25)).toBe(false);
    expect(await codeOf(op.deleteEntry(Transport.TRANSPORT_TCP, 25))).toEqual({
      code: status.NOT_FOUND,
      details: 'no entry for tcp/25',
    });
  });

  it('drains through membership, and only operators change the switch', async () => {
    const n2 = connectMembership(`127.0.0.1:${server.port}`, tlsOf(pki.nodes.n2));
    await n2.join(joinRequest('n2', 12));
    const m = await op.drain('n2');
    expect(m?.state).toBe(MemberState.MEMBER_STATE_DRAINING);
    expect(server.membership.member('n2')?.drained).toBe(true);
    expect((await op.drain('n2', true))?.state).toBe(MemberState.MEMBER_STATE_ACTIVE);
    expect((await codeOf(op.drain('n7'))).code).toBe(status.NOT_FOUND);

    const asNode = connectSwitch(`127.0.0.1:${server.port}`, tlsOf(pki.nodes.n2));
    expect((await codeOf(asNode.drain('n2'))).code).toBe(status.PERMISSION_DENIED);
    expect((await codeOf(asNode.listEntries())).code).toBe(status.PERMISSION_DENIED);
    asNode.close();
    n2.close();
  });

  it('answers UNIMPLEMENTED when the server has no switch', async () => {
    const bare = await startTestServer(pki);
    const c = connectSwitch(`127.0.0.1:${bare.port}`, tlsOf(pki.operator));
    expect(await codeOf(c.listEntries())).toEqual({
      code: status.UNIMPLEMENTED,
      details: 'this server has no message switch attached',
    });
    c.close();
    await bare.close();
  });
});
