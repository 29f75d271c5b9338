import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  DecisionKind,
  descriptorSet,
  ExplainRequest,
  ExplainResponse,
  JoinRequest,
  MembershipService,
  SetEntryRequest,
  Transport,
} from './index.js';

describe('@onehost/proto', () => {
  it('round-trips a join request through the wire format', () => {
    const req = JoinRequest.fromPartial({
      nodeName: 'n1',
      internalAddress: '198.18.0.11',
      capabilities: ['nfs', 'vxlan'],
      vxlanMac: '02:00:5e:10:00:01',
    });
    const back = JoinRequest.decode(JoinRequest.encode(req).finish());
    expect(back).toEqual(req);
  });

  it('keeps the oneof case and the optional port apart from their zero values', () => {
    const req: ExplainRequest = {
      input: {
        $case: 'flow',
        value: {
          protocol: Transport.TRANSPORT_TCP,
          srcAddress: '203.0.113.7',
          srcPort: 40000,
          dstAddress: '203.0.113.1',
          dstPort: 80,
          tcpFlags: 'S',
          payload: Buffer.alloc(0),
        },
      },
      updateTables: false,
    };
    expect(ExplainRequest.decode(ExplainRequest.encode(req).finish()).input?.$case).toBe('flow');
    const hex = ExplainRequest.decode(
      ExplainRequest.encode({ input: { $case: 'packetHex', value: '' }, updateTables: true }).finish(),
    );
    expect(hex.input).toEqual({ $case: 'packetHex', value: '' });

    const zero = ExplainResponse.fromPartial({
      decision: { kind: DecisionKind.DECISION_KIND_FORWARD, port: 0 },
    });
    expect(ExplainResponse.decode(ExplainResponse.encode(zero).finish()).decision?.port).toBe(0);
    const none = ExplainResponse.fromPartial({ decision: { kind: DecisionKind.DECISION_KIND_LOCAL } });
    expect(ExplainResponse.decode(ExplainResponse.encode(none).finish()).decision?.port).toBeUndefined();
  });

  it('carries entry options as a protobuf Struct', () => {
    const req = SetEntryRequest.fromPartial({
      entry: {
        protocol: Transport.TRANSPORT_TCP,
        port: 80,
        function: 'connection',
        options: { policy: 'round-robin', nodes: ['n1', 'n2'], grace: 2 },
      },
    });
    const back = SetEntryRequest.decode(SetEntryRequest.encode(req).finish());
    expect(back.entry?.options).toEqual({ policy: 'round-robin', nodes: ['n1', 'n2'], grace: 2 });
  });

  it('describes the services for grpc-js and ships the descriptor set', () => {
    expect(MembershipService.join.path).toBe('/onehost.v1.Membership/Join');
    expect(MembershipService.heartbeat.requestStream).toBe(true);
    expect(MembershipService.watchMembers.responseStream).toBe(true);
    const text = descriptorSet().toString('latin1');
    for (const file of [
      'onehost/v1/membership.proto',
      'onehost/v1/switch.proto',
      'google/protobuf/struct.proto',
    ])
      expect(text).toContain(file);
  });

  // two runs of the buf binary: seconds on a busy machine (the unit suites run beside each other)
  it('keeps the .proto sources lint-clean and formatted (buf lint, buf format)', { timeout: 60_000 }, () => {
    const root = new URL('../../../proto', import.meta.url).pathname;
    const run = (args: string[]) => execFileSync('buf', args, { cwd: root, encoding: 'utf8', stdio: 'pipe' });
    expect(run(['lint'])).toBe('');
    expect(run(['format', '--diff'])).toBe('');
  });
});
