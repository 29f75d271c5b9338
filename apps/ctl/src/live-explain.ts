import { DecisionKind, type ExplainRequest, type ExplainResponse, Transport } from '@onehost/proto';
import { TCP_FLAGS } from '@onehost/wire';
import type { Output } from './explain-command.js';
import { parseFlow } from './flow-spec.js';
import { type GatewayFlags, printJson, UsageError, withGateway } from './gateway.js';
import { parseHex } from './hex.js';

export interface LiveExplainOptions {
  packet?: string;
  flow?: string;
  updateTables: boolean;
}

const LETTERS: Array<[number, string]> = [
  [TCP_FLAGS.FIN, 'F'],
  [TCP_FLAGS.SYN, 'S'],
  [TCP_FLAGS.RST, 'R'],
  [TCP_FLAGS.PSH, 'P'],
  [TCP_FLAGS.ACK, 'A'],
  [TCP_FLAGS.URG, 'U'],
];

/** request turns --packet or --flow into an ExplainRequest. Throws UsageError naming the flag. */
function request(opts: LiveExplainOptions): ExplainRequest {
  if (opts.packet !== undefined) {
    try {
      const hex = Buffer.from(parseHex(opts.packet)).toString('hex');
      return { input: { $case: 'packetHex', value: hex }, updateTables: opts.updateTables };
    } catch (e) {
      throw new UsageError(`--packet: ${(e as Error).message}`);
    }
  }
  let q: ReturnType<typeof parseFlow>;
  try {
    q = parseFlow(opts.flow!);
  } catch (e) {
    throw new UsageError(`--flow: ${(e as Error).message}`);
  }
  // As offline: a TCP flow without flags is a new connection.
  const bits = q.protocol === 'tcp' ? (q.tcpFlags ?? TCP_FLAGS.SYN) : 0;
  return {
    input: {
      $case: 'flow',
      value: {
        protocol: q.protocol === 'tcp' ? Transport.TRANSPORT_TCP : Transport.TRANSPORT_UDP,
        srcAddress: q.src,
        srcPort: q.srcPort,
        dstAddress: q.dst,
        dstPort: q.dstPort,
        tcpFlags: LETTERS.filter(([b]) => (bits & b) !== 0)
          .map(([, l]) => l)
          .join(''),
        payload: Buffer.alloc(0),
      },
    },
    updateTables: opts.updateTables,
  };
}

type DecisionJson =
  | { kind: 'forward'; node: number; nodeName: string; port?: number }
  | { kind: 'local'; port?: number }
  | { kind: 'drop'; reason: string };

/** decisionJson is the decision in the offline explain's shape. */
function decisionJson(r: ExplainResponse): DecisionJson {
  const d = r.decision;
  const port = d?.port !== undefined ? { port: d.port } : {};
  switch (d?.kind) {
    case DecisionKind.DECISION_KIND_FORWARD:
      return { kind: 'forward', node: d.nodeId, nodeName: d.nodeName, ...port };
    case DecisionKind.DECISION_KIND_LOCAL:
      return { kind: 'local', ...port };
    default:
      return { kind: 'drop', reason: d?.dropReason ?? '' };
  }
}

function summaryJson(r: ExplainResponse) {
  if (r.packet === undefined) return undefined;
  return Object.fromEntries(Object.entries(r.packet).filter(([, v]) => v !== '' && v !== undefined));
}

/**
 * runLiveExplain asks the gateway's switch (ExplainRoute) which node a packet or flow would reach, and
 * why. A dry run unless `updateTables`. Returns the exit code; never throws.
 */
export function runLiveExplain(flags: GatewayFlags, opts: LiveExplainOptions, io: Output): Promise<number> {
  return withGateway('explain', flags, io, async (gw) => {
    if ((opts.packet === undefined) === (opts.flow === undefined))
      throw new UsageError('give exactly one of --packet <hex> or --flow <flow> (--pcap works offline only)');
    const r = await gw.switch().explain(request(opts));
    const decision = decisionJson(r);
    const summary = summaryJson(r);
    if (flags.json)
      return printJson(io, {
        packet: 0,
        decision,
        trace: r.trace,
        ...(summary ? { summary } : {}),
        ...(r.path !== '' ? { path: r.path } : {}),
      });
    const port =
      decision.kind !== 'drop' && decision.port !== undefined
        ? `, destination port rewritten to ${decision.port}`
        : '';
    io.out(
      `decision: ${
        decision.kind === 'forward'
          ? `forward to ${decision.nodeName} (node ${decision.node})${port}`
          : decision.kind === 'local'
            ? `local: the gateway host's own stack${port}`
            : `drop (${decision.reason})`
      }`,
    );
    const p = r.packet;
    if (p !== undefined) {
      const ports = p.srcPort !== undefined ? [`:${p.srcPort}`, `:${p.dstPort}`] : ['', ''];
      const extra = [p.flags, p.fragment, p.icmp].filter((x) => x !== '').map((x) => ` [${x}]`);
      io.out(
        `packet:   ${p.protocol} ${p.src}${ports[0]} > ${p.dst}${ports[1]}${extra.join('')} ${p.length} bytes`,
      );
    }
    if (r.path !== '') io.out(`path:     ${r.path}`);
    io.out('trace:');
    for (const step of r.trace) io.out(`  ${step}`);
  });
}
