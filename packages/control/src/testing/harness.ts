import type { ClientDuplexStream, ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import {
  type HeartbeatRequest,
  type HeartbeatResponse,
  type JoinRequest,
  MemberChange,
  type WatchMembersResponse,
} from '@onehost/proto';
import type { IssuedCertificate } from '../auth/certificates.js';
import type { ClientTls } from '../client.js';
import { type ControlServer, type ControlServerOptions, startControlServer } from '../server.js';
import { TEST_CLUSTER } from './cluster.js';
import type { TestPki } from './pki.js';

/** tlsOf turns an issued certificate into client TLS settings. */
export function tlsOf(c: IssuedCertificate): ClientTls {
  return { caPem: c.caPem, certPem: c.certPem, keyPem: c.keyPem };
}

/** startTestServer starts a control server on 127.0.0.1, any port, with the test cluster. */
export function startTestServer(
  pki: TestPki,
  opts: Partial<ControlServerOptions> = {},
): Promise<ControlServer> {
  return startControlServer({
    tls: { caPem: pki.ca.certPem, certPem: pki.gateway.certPem, keyPem: pki.gateway.keyPem },
    cluster: TEST_CLUSTER,
    shutdownGraceMs: 200,
    ...opts,
  });
}

/** joinRequest is a valid join for node `name` at 198.18.0.<last>. */
export function joinRequest(name: string, last: number): JoinRequest {
  return {
    nodeName: name,
    internalAddress: `198.18.0.${last}`,
    capabilities: ['vxlan'],
    vxlanMac: `02:00:5e:10:00:${last.toString(16).padStart(2, '0')}`,
  };
}

/** codeOf is a rejected call's gRPC status code (or -1 when it resolved). */
export async function codeOf(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await p;
    return { code: -1, details: '' };
  } catch (err) {
    const e = err as ServiceError;
    return { code: e.code, details: e.details };
  }
}

/** Beats drives a heartbeat stream: write beats, see acknowledgements and the final status. */
export class Beats {
  readonly acks: HeartbeatResponse[] = [];
  status: { code: number; details: string } | null = null;
  private seq = 0;

  constructor(
    readonly stream: ClientDuplexStream<HeartbeatRequest, HeartbeatResponse>,
    private readonly nodeName: string,
    private readonly nodeId: number,
  ) {
    stream.on('data', (r: HeartbeatResponse) => this.acks.push(r));
    stream.on('error', (e: ServiceError) => {
      this.status ??= { code: e.code, details: e.details };
    });
    stream.on('status', (s: { code: number; details: string }) => {
      this.status ??= { code: s.code, details: s.details };
    });
  }

  /** beat sends the next beat; `healthUpdate` (with no checks) makes the gateway acknowledge it at once. */
  beat(healthUpdate = false): void {
    this.stream.write({
      nodeName: this.nodeName,
      nodeId: this.nodeId,
      sequence: ++this.seq,
      healthUpdate,
      health: [],
    });
  }

  get sent(): number {
    return this.seq;
  }
}

/** Watch collects a WatchMembers stream as "change name" strings. */
export class Watch {
  readonly events: string[] = [];
  readonly at: number[] = [];

  constructor(readonly stream: ClientReadableStream<WatchMembersResponse>) {
    stream.on('data', (r: WatchMembersResponse) => {
      const kind = MemberChange[r.change].replace('MEMBER_CHANGE_', '').toLowerCase();
      this.events.push(r.member === undefined ? kind : `${kind} ${r.member.nodeName}`);
      this.at.push(Date.now());
    });
    stream.on('error', () => {});
  }

  /** index of the first event equal to `e` at or after `from`, or -1. */
  find(e: string, from = 0): number {
    return this.events.indexOf(e, from);
  }

  cancel(): void {
    this.stream.cancel();
  }
}
