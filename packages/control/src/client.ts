import {
  type CallOptions,
  type ChannelOptions,
  type ClientDuplexStream,
  type ClientReadableStream,
  type ClientUnaryCall,
  credentials,
  Metadata,
  makeGenericClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import {
  type ExplainRequest,
  type ExplainResponse,
  ExportsClient,
  GatewayClient,
  type GatewayStatusResponse,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type JoinRequest,
  type JoinResponse,
  type ListConnectionsRequest,
  type ListConnectionsResponse,
  type ListEntriesResponse,
  type ListGatewaysResponse,
  type Member,
  MembershipClient,
  type NodeExports,
  type RegisterMountRequest,
  type RegisterMountResponse,
  type ReloadResponse,
  SwitchClient,
  type SwitchEntry,
  type Transport,
  type WatchMembersResponse,
} from '@onehost/proto';

/** ClientTls is the caller's certificate and key and the cluster CA that checks the gateway. */
export interface ClientTls {
  caPem: string | Buffer;
  certPem: string | Buffer;
  keyPem: string | Buffer;
  /** a name in the gateway's certificate, when the target address is not one (e.g. a tunnel). */
  serverName?: string;
}

export interface ConnectOptions {
  /** deadline of each unary call (default 5000 ms). */
  deadlineMs?: number;
}

type Unary<Req, Res> = (
  req: Req,
  md: Metadata,
  opts: Partial<CallOptions>,
  cb: (err: ServiceError | null, res: Res) => void,
) => ClientUnaryCall;

/** ConnectionBase holds what every typed connection shares. */
abstract class ConnectionBase<C extends { close(): void }> {
  constructor(
    readonly client: C,
    private readonly deadlineMs: number,
  ) {}

  /** call makes one unary call with the deadline; rejects with the grpc ServiceError (code, details). */
  protected call<Req, Res>(fn: Unary<Req, Res>, req: Req): Promise<Res> {
    return new Promise((resolve, reject) => {
      fn.call(this.client, req, new Metadata(), { deadline: Date.now() + this.deadlineMs }, (err, res) =>
        err ? reject(err) : resolve(res),
      );
    });
  }

  /** close closes the channel. */
  close(): void {
    this.client.close();
  }
}

/** MembershipConnection is the agent's and the CLI's typed view of onehost.v1.Membership. */
export class MembershipConnection extends ConnectionBase<MembershipClient> {
  join(req: JoinRequest): Promise<JoinResponse> {
    return this.call(this.client.join, req);
  }
  async leave(nodeName: string): Promise<void> {
    await this.call(this.client.leave, { nodeName });
  }
  async listMembers(): Promise<Member[]> {
    return (await this.call(this.client.listMembers, {})).members;
  }
  async forgetMember(nodeName: string): Promise<void> {
    await this.call(this.client.forgetMember, { nodeName });
  }
  /** heartbeat opens the heartbeat stream: write a beat every interval, read the acknowledgements. */
  heartbeat(): ClientDuplexStream<HeartbeatRequest, HeartbeatResponse> {
    return this.client.heartbeat();
  }
  /** watchMembers streams membership changes (with the current members first when asked). */
  watchMembers(includeSnapshot = true): ClientReadableStream<WatchMembersResponse> {
    return this.client.watchMembers({ includeSnapshot });
  }
}

/** ExportsConnection is the typed view of onehost.v1.Exports. */
export class ExportsConnection extends ConnectionBase<ExportsClient> {
  registerMount(req: RegisterMountRequest): Promise<RegisterMountResponse> {
    return this.call(this.client.registerMount, req);
  }
  async listExports(): Promise<NodeExports[]> {
    return (await this.call(this.client.listExports, {})).nodes;
  }
}

/** SwitchConnection is the typed view of onehost.v1.Switch. */
export class SwitchConnection extends ConnectionBase<SwitchClient> {
  listEntries(): Promise<ListEntriesResponse> {
    return this.call(this.client.listEntries, {});
  }
  async setEntry(entry: SwitchEntry): Promise<number> {
    return (await this.call(this.client.setEntry, { entry })).version;
  }
  async deleteEntry(protocol: Transport, port: number): Promise<number> {
    return (await this.call(this.client.deleteEntry, { protocol, port })).version;
  }
  async drain(nodeName: string, undrain = false): Promise<Member | undefined> {
    return (await this.call(this.client.drain, { nodeName, undrain })).member;
  }
  explain(req: ExplainRequest): Promise<ExplainResponse> {
    return this.call(this.client.explain, req);
  }
  listConnections(req: Partial<ListConnectionsRequest> = {}): Promise<ListConnectionsResponse> {
    return this.call(this.client.listConnections, {
      protocol: req.protocol ?? 0,
      port: req.port ?? 0,
      nodeName: req.nodeName ?? '',
      limit: req.limit ?? 0,
    });
  }
}

function channel(tls: ClientTls) {
  const creds = credentials.createSsl(
    Buffer.from(tls.caPem),
    Buffer.from(tls.keyPem),
    Buffer.from(tls.certPem),
  );
  // grpc-js waits up to 120 s between connection attempts by default: a gateway back from a restart or a
  // reboot would wait that long for its agents; the callers retry with their own backoff anyway
  const options: ChannelOptions = {
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 1000,
  };
  if (tls.serverName !== undefined) {
    options['grpc.ssl_target_name_override'] = tls.serverName;
    options['grpc.default_authority'] = tls.serverName;
  }
  return { creds, options };
}

/** connectMembership opens a channel to the Membership service at `target` ("host:port"). */
export function connectMembership(
  target: string,
  tls: ClientTls,
  opts: ConnectOptions = {},
): MembershipConnection {
  const { creds, options } = channel(tls);
  return new MembershipConnection(new MembershipClient(target, creds, options), opts.deadlineMs ?? 5000);
}

/** connectExports opens a channel to the Exports service at `target`. */
export function connectExports(target: string, tls: ClientTls, opts: ConnectOptions = {}): ExportsConnection {
  const { creds, options } = channel(tls);
  return new ExportsConnection(new ExportsClient(target, creds, options), opts.deadlineMs ?? 5000);
}

/** GatewayConnection is the CLI's typed view of onehost.v1.Gateway. */
export class GatewayConnection extends ConnectionBase<GatewayClient> {
  status(): Promise<GatewayStatusResponse> {
    return this.call(this.client.status, {});
  }
  async stop(keepDatapath = false): Promise<void> {
    await this.call(this.client.stop, { keepDatapath });
  }
  reload(configYaml: string, dryRun: boolean): Promise<ReloadResponse> {
    return this.call(this.client.reload, { configYaml, dryRun });
  }
  listGateways(): Promise<ListGatewaysResponse> {
    return this.call(this.client.listGateways, {});
  }
  async drainGateway(name: string, drained: boolean): Promise<void> {
    await this.call(this.client.drainGateway, { name, drained });
  }
}

/** connectGateway opens a channel to the Gateway service at `target`. */
export function connectGateway(target: string, tls: ClientTls, opts: ConnectOptions = {}): GatewayConnection {
  const { creds, options } = channel(tls);
  return new GatewayConnection(new GatewayClient(target, creds, options), opts.deadlineMs ?? 5000);
}

/** connectSwitch opens a channel to the Switch service at `target`. */
export function connectSwitch(target: string, tls: ClientTls, opts: ConnectOptions = {}): SwitchConnection {
  const { creds, options } = channel(tls);
  return new SwitchConnection(new SwitchClient(target, creds, options), opts.deadlineMs ?? 5000);
}

/** HealthStatus is grpc.health.v1's serving status. */
export type HealthStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

/**
 * checkHealth asks grpc.health.v1.Health/Check for `service` ('' = the whole server). Rejects with
 * the ServiceError (e.g. UNAVAILABLE when the gateway cannot be reached or refuses the certificate).
 */
export async function checkHealth(
  target: string,
  tls: ClientTls,
  service = '',
  deadlineMs = 5000,
): Promise<HealthStatus> {
  // loaded on first use: it compiles its .proto at load, a third of onehostctl's start-up otherwise
  const { service: healthService } = await import('grpc-health-check');
  const HealthClient = makeGenericClientConstructor(healthService, 'grpc.health.v1.Health');
  const { creds, options } = channel(tls);
  const client = new HealthClient(target, creds, options);
  return new Promise<HealthStatus>((resolve, reject) => {
    client.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      (req: { service: string }) => healthService.Check!.requestSerialize(req),
      (buf: Buffer) => healthService.Check!.responseDeserialize(buf) as { status: HealthStatus },
      { service },
      new Metadata(),
      { deadline: Date.now() + deadlineMs },
      (err, res) => (err || res === undefined ? reject(err) : resolve(res.status)),
    );
  }).finally(() => client.close());
}
