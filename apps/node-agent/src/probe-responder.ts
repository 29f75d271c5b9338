import { createSocket, type Socket } from 'node:dgram';
import type { Logger } from 'pino';

/** the probe payload starts with "OHPR" (the gateway's probe-frame.ts) */
const PROBE_MAGIC = 0x4f485052;

/**
 * ProbeResponder echoes the gateway's data-path probes. They reach it only through the node's own
 * inbound path (VXLAN device, cluster address, routes, nft table): the gateway sends them encapsulated,
 * to the cluster address. The echo goes straight back to the gateway's interconnect address. Only
 * gateways are answered, and only what looks like a probe.
 */
export class ProbeResponder {
  answered = 0;
  /** told of each probe answered: the gateway that sent it is alive and reaches this node */
  onProbe: ((gateway: string) => void) | null = null;

  private constructor(
    private readonly socket: Socket,
    readonly port: number,
    private readonly gateways: ReadonlySet<string>,
  ) {
    socket.on('message', (msg, rinfo) => {
      if (!this.gateways.has(rinfo.address) || msg.length < 12 || msg.readUInt32BE(0) !== PROBE_MAGIC) return;
      this.answered++;
      socket.send(msg, rinfo.port, rinfo.address);
      this.onProbe?.(rinfo.address);
    });
  }

  /** open binds `port` on every address (the cluster address may come and go). Throws the bind error. */
  static async open(port: number, gateways: readonly string[], log: Logger): Promise<ProbeResponder> {
    const s = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(port, '0.0.0.0', () => {
        s.off('error', reject);
        resolve();
      });
    });
    s.on('error', (e) => log.warn({ problem: e.message }, 'probe responder error'));
    return new ProbeResponder(s, port, new Set(gateways));
  }

  /** sameAs says whether this responder already serves `port` for `gateways`. */
  sameAs(port: number, gateways: readonly string[]): boolean {
    return (
      port === this.port &&
      gateways.length === this.gateways.size &&
      gateways.every((g) => this.gateways.has(g))
    );
  }

  close(): void {
    this.socket.close();
  }
}
