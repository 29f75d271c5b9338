import { Endianness, type Member, MemberState, type NodeExports, Transport } from '@onehost/proto';
import type { ExportsRecord, HealthRecord, MemberRecord, MemberStateName } from '../store/records.js';

// Domain records ⇄ protobuf messages.

const STATE: Record<MemberStateName, MemberState> = {
  active: MemberState.MEMBER_STATE_ACTIVE,
  draining: MemberState.MEMBER_STATE_DRAINING,
  unreachable: MemberState.MEMBER_STATE_UNREACHABLE,
  down: MemberState.MEMBER_STATE_DOWN,
};

/** memberStateToProto maps a state name to the enum. */
export function memberStateToProto(s: MemberStateName): MemberState {
  return STATE[s];
}

/** memberToProto renders a member record as a Member message. */
export function memberToProto(m: MemberRecord, health: readonly HealthRecord[] = []): Member {
  return {
    nodeId: m.id,
    nodeName: m.name,
    internalAddress: m.internalAddress,
    vxlanMac: m.vxlanMac,
    capabilities: [...m.capabilities],
    state: STATE[m.state],
    portBlock: { lo: m.block.lo, hi: m.block.hi },
    lastSeenUnixMs: m.lastSeenUnixMs,
    downReason: m.downReason,
    health: health.map((h) => ({ ...h, covers: [...h.covers] })),
  };
}

/** exportsToProto renders a registration as a NodeExports message. */
export function exportsToProto(r: ExportsRecord, nodeId: number): NodeExports {
  const mountPorts = [];
  if (r.mountPorts.tcp !== undefined)
    mountPorts.push({ transport: Transport.TRANSPORT_TCP, port: r.mountPorts.tcp });
  if (r.mountPorts.udp !== undefined)
    mountPorts.push({ transport: Transport.TRANSPORT_UDP, port: r.mountPorts.udp });
  return {
    nodeId,
    nodeName: r.nodeName,
    mountPorts,
    exports: r.exports.map((e) => ({ path: e.path, exportId: e.exportId })),
    handleLayout: {
      offset: r.handleLayout.offset,
      length: r.handleLayout.length,
      endianness: r.handleLayout.endian === 'big' ? Endianness.ENDIANNESS_BIG : Endianness.ENDIANNESS_LITTLE,
    },
    registeredUnixMs: r.registeredUnixMs,
  };
}

/** transportName maps the enum to 'tcp' | 'udp', or null for anything else. */
export function transportName(t: Transport): 'tcp' | 'udp' | null {
  return t === Transport.TRANSPORT_TCP ? 'tcp' : t === Transport.TRANSPORT_UDP ? 'udp' : null;
}

/** transportToProto maps 'tcp' | 'udp' to the enum. */
export function transportToProto(p: 'tcp' | 'udp'): Transport {
  return p === 'tcp' ? Transport.TRANSPORT_TCP : Transport.TRANSPORT_UDP;
}
