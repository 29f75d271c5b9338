import type { ServerDuplexStream, ServerWritableStream } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import {
  type HeartbeatRequest,
  type HeartbeatResponse,
  type JoinResponse,
  MemberChange,
  type MembershipServer,
  type WatchMembersRequest,
  type WatchMembersResponse,
} from '@onehost/proto';
import { requireNodeSelf, requireRole } from '../auth/peer.js';
import { type ClusterConfig, inPrefixes } from '../cluster-config.js';
import { invalidArgument } from '../control-error.js';
import type { HeartbeatSession, MemberChangeKind, Membership } from '../membership.js';
import type { MemberStateName } from '../store/records.js';
import { capabilities, healthChecks, ipv4, nodeName, unicastMac } from '../validate.js';
import { memberStateToProto, memberToProto } from './convert.js';
import { countStatus, type RpcContext, statusOf, unary } from './rpc.js';

const CHANGE: Record<MemberChangeKind, MemberChange> = {
  joined: MemberChange.MEMBER_CHANGE_JOINED,
  down: MemberChange.MEMBER_CHANGE_DOWN,
  left: MemberChange.MEMBER_CHANGE_LEFT,
  draining: MemberChange.MEMBER_CHANGE_DRAINING,
  undrained: MemberChange.MEMBER_CHANGE_UNDRAINED,
  forgotten: MemberChange.MEMBER_CHANGE_FORGOTTEN,
  health: MemberChange.MEMBER_CHANGE_HEALTH,
  unreachable: MemberChange.MEMBER_CHANGE_UNREACHABLE,
  reachable: MemberChange.MEMBER_CHANGE_REACHABLE,
};

/** Streams is the set of open server streams, ended when the server closes. */
export type OpenStreams = Set<{ end(): void }>;

/**
 * membershipService implements onehost.v1.Membership over `membership`: node calls checked against
 * the caller's node certificate, operator calls against an operator or gateway certificate.
 */
export function membershipService(
  ctx: RpcContext,
  membership: Membership,
  cluster: ClusterConfig,
  watchers: OpenStreams,
): MembershipServer {
  const readers = ['operator', 'gateway'] as const;
  return {
    join: unary(ctx, 'Membership/Join', async (req, call): Promise<JoinResponse> => {
      requireRole(call, ['node']);
      const name = nodeName('node_name', req.nodeName);
      requireNodeSelf(call, name);
      const internalAddress = ipv4('internal_address', req.internalAddress);
      if (!inPrefixes(internalAddress, cluster.interconnectPrefixes))
        throw invalidArgument(
          'internal_address',
          `${internalAddress} is outside the interconnect (${cluster.interconnectPrefixes.join(', ')})`,
        );
      const rec = await membership.join({
        name,
        internalAddress,
        vxlanMac: unicastMac('vxlan_mac', req.vxlanMac),
        capabilities: capabilities('capabilities', req.capabilities),
      });
      return {
        nodeId: rec.id,
        clusterAddresses: cluster.addresses.map((a) => ({ ...a })),
        portBlock: { lo: rec.block.lo, hi: rec.block.hi },
        vxlan: {
          ...cluster.vxlan,
          gatewayAddresses: [...cluster.vxlan.gatewayAddresses],
          probeUdpPort: cluster.vxlan.probeUdpPort ?? 0,
          probeIntervalMs: cluster.vxlan.probeIntervalMs ?? 0,
        },
        heartbeatIntervalMs: membership.heartbeatIntervalMs,
        heartbeatTimeoutMs: membership.heartbeatTimeoutMs,
        interconnectPrefixes: [...cluster.interconnectPrefixes],
        outsideMtu: cluster.outsideMtu ?? 0,
      };
    }),

    heartbeat: (call: ServerDuplexStream<HeartbeatRequest, HeartbeatResponse>) =>
      heartbeatStream(ctx, membership, call),

    leave: unary(ctx, 'Membership/Leave', async (req, call) => {
      requireRole(call, ['node']);
      const name = nodeName('node_name', req.nodeName);
      requireNodeSelf(call, name);
      await membership.leave(name);
      return {};
    }),

    listMembers: unary(ctx, 'Membership/ListMembers', (_req, call) => {
      requireRole(call, readers);
      return { members: membership.members().map((m) => memberToProto(m, membership.healthOf(m.name))) };
    }),

    watchMembers: (call: ServerWritableStream<WatchMembersRequest, WatchMembersResponse>) => {
      const method = 'Membership/WatchMembers';
      try {
        requireRole(call, readers);
      } catch (err) {
        const s = statusOf(ctx, method, err);
        countStatus(ctx, method, s.code);
        call.emit('error', s);
        return;
      }
      if (call.request.includeSnapshot) {
        for (const m of membership.members())
          call.write({
            change: MemberChange.MEMBER_CHANGE_SNAPSHOT,
            member: memberToProto(m, membership.healthOf(m.name)),
          });
        call.write({ change: MemberChange.MEMBER_CHANGE_SYNCED });
      }
      const unsubscribe = membership.onChange((c) => {
        call.write({
          change: CHANGE[c.kind],
          member: memberToProto(c.member, membership.healthOf(c.member.name)),
        });
      });
      const entry = {
        end: () => {
          finish();
          call.end();
        },
      };
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        unsubscribe();
        watchers.delete(entry);
        countStatus(ctx, method, status.OK);
      };
      watchers.add(entry);
      call.on('cancelled', finish);
      call.on('close', finish);
    },

    forgetMember: unary(ctx, 'Membership/ForgetMember', async (req, call) => {
      requireRole(call, ['operator']);
      await membership.forget(nodeName('node_name', req.nodeName));
      return {};
    }),
  };
}

/**
 * heartbeatStream serves one Heartbeat stream: the first beat binds it to the caller's join, beats are
 * answered with the member's state (not every one: below), and the stream's end (either side) marks
 * the node down.
 */
function heartbeatStream(
  ctx: RpcContext,
  membership: Membership,
  call: ServerDuplexStream<HeartbeatRequest, HeartbeatResponse>,
): void {
  const method = 'Membership/Heartbeat';
  let session: HeartbeatSession | null = null;
  let ended = false;
  const acks = new AckPolicy(membership.heartbeatIntervalMs, membership.heartbeatTimeoutMs);

  const fail = (err: unknown) => {
    if (ended) return;
    ended = true;
    if (session !== null) membership.detachHeartbeat(session);
    const s = statusOf(ctx, method, err);
    countStatus(ctx, method, s.code);
    call.emit('error', s);
  };
  // The node closed or dropped the stream: it is down at once.
  const peerGone = (ok: boolean) => {
    if (ended) return;
    ended = true;
    if (session !== null) membership.detachHeartbeat(session);
    countStatus(ctx, method, ok ? status.OK : status.CANCELLED);
    if (ok) call.end();
  };

  call.on('data', (req: HeartbeatRequest) => {
    if (ended) return;
    try {
      if (session === null) {
        requireRole(call, ['node']);
        const name = nodeName('node_name', req.nodeName);
        requireNodeSelf(call, name);
        session = membership.attachHeartbeat(name, req.nodeId, fail);
      } else if (req.nodeName !== session.name && req.nodeName !== '') {
        throw invalidArgument('node_name', `this stream belongs to ${session.name}`);
      }
      const state = membership.beat(session, req.healthUpdate ? healthChecks(req.health) : undefined);
      if (!acks.due(performance.now(), state, req.healthUpdate)) return;
      call.write({ sequence: req.sequence, state: memberStateToProto(state) });
    } catch (err) {
      fail(err);
    }
  });
  call.on('end', () => peerGone(true));
  call.on('cancelled', () => peerGone(false));
  call.on('error', () => peerGone(false));
}

/**
 * AckPolicy decides which beats of a stream are acknowledged: the first, any that finds the member's
 * state changed or carries a health update, and otherwise one whenever more than timeout − 2 × interval
 * passed since the last, so the agent hears one well within its timeout (a beat to spare). At 100/350 ms
 * that is every other beat, at the default 200/1000 ms every third or fourth: fewer messages, whose TLS
 * and HTTP/2 framing is most of the control plane's CPU with many nodes.
 */
export class AckPolicy {
  private readonly gapMs: number;
  private lastAt = Number.NEGATIVE_INFINITY;
  private lastState: MemberStateName | null = null;

  constructor(intervalMs: number, timeoutMs: number) {
    this.gapMs = timeoutMs - 2 * intervalMs;
  }

  /** due: acknowledge the beat taken at `now` (ms, monotonic) that left the member in `state`. */
  due(now: number, state: MemberStateName, healthUpdate: boolean): boolean {
    if (state === this.lastState && !healthUpdate && now - this.lastAt <= this.gapMs) return false;
    this.lastAt = now;
    this.lastState = state;
    return true;
  }
}
