import type { ExportsRegistry } from '@onehost/control';
import { EVENT, eventName, type SwitchCounters } from '@onehost/switch';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Splice } from '../splice/handover.js';
import type { RpcResponders } from './responders.js';

/** The switch events of the MOUNT and NFS routing functions: calls they handed to the gateway, and why. */
const RPC_EVENTS = [
  EVENT.RPC_MALFORMED,
  EVENT.RPC_WRONG_PROGRAM,
  EVENT.MOUNT_NO_MATCH,
  EVENT.MOUNT_TO_GATEWAY,
  EVENT.NFS_UNKNOWN_EXPORT,
  EVENT.NFS_TO_GATEWAY,
  EVENT.RPC_TCP_UNBOUND,
];

/**
 * registerRpcMetrics adds the RPC responders' counters to the gateway's registry (read at scrape
 * time): `onehost_rpc_calls_total{service,transport,outcome}`, `onehost_rpc_dropped_total{service,
 * transport,reason}`, `onehost_rpc_listeners{service,transport}`, the switch's RPC routing events
 * `onehost_rpc_routing_events_total{event}` and `onehost_export_conflicts_total{field}` (registrations
 * refused because another node claims a path or an export id), and with delayed binding
 * `onehost_splice_flows_total{outcome}`.
 */
export function registerRpcMetrics(
  reg: Registry,
  s: { responders: RpcResponders; exports: ExportsRegistry; switchCounters: SwitchCounters; splice?: Splice },
): void {
  const splice = s.splice;
  if (splice !== undefined) {
    new Counter({
      name: 'onehost_splice_flows_total',
      help: 'TCP MOUNT/NFS connections the gateway held for delayed binding, by what became of them.',
      labelNames: ['outcome'],
      registers: [reg],
      collect() {
        this.reset();
        for (const [outcome, n] of splice.outcomes) this.inc({ outcome }, n);
      },
    });
    new Counter({
      name: 'onehost_splice_segments_total',
      help: 'Client segments of spliced flows: shifted by the gateway’s tc program (kernel; super-packets once) or its user space (gateway) for the node’s kernel, or sent to the node’s agent.',
      labelNames: ['path'],
      registers: [reg],
      collect() {
        this.reset();
        this.inc({ path: 'gateway' }, splice.o.flows.splicedShifted[0] ?? 0);
        this.inc({ path: 'agent' }, splice.o.flows.splicedToAgent[0] ?? 0);
        this.inc({ path: 'kernel' }, splice.o.flows.splicedInKernel);
      },
    });
    new Gauge({
      name: 'onehost_splice_shifted_flows',
      help: 'Spliced flows whose client segments the gateway shifts itself (their node’s agent told it how).',
      registers: [reg],
      collect() {
        this.set(splice.o.flows.shiftCount);
      },
    });
    new Gauge({
      name: 'onehost_splice_kernel_flows',
      help: 'Spliced flows whose client segments the gateway’s tc program shifts and routes (kernel data path).',
      registers: [reg],
      collect() {
        this.set(splice.o.flows.kernelFlows);
      },
    });
  }
  new Counter({
    name: 'onehost_rpc_calls_total',
    help: 'Calls the gateway answered itself (portmapper, MOUNT, NFS), by outcome.',
    labelNames: ['service', 'transport', 'outcome'],
    registers: [reg],
    collect() {
      this.reset();
      for (const c of s.responders.counters.snapshot().calls)
        this.inc({ service: c.service, transport: c.transport, outcome: c.outcome }, c.count);
    },
  });
  new Counter({
    name: 'onehost_rpc_dropped_total',
    help: 'Messages to the gateway’s RPC services left unanswered, by reason.',
    labelNames: ['service', 'transport', 'reason'],
    registers: [reg],
    collect() {
      this.reset();
      for (const d of s.responders.counters.snapshot().drops)
        this.inc({ service: d.service, transport: d.transport, reason: d.reason }, d.count);
    },
  });
  new Gauge({
    name: 'onehost_rpc_listeners',
    help: 'Open RPC responder sockets, by service and transport.',
    labelNames: ['service', 'transport'],
    registers: [reg],
    collect() {
      this.reset();
      for (const k of s.responders.listening()) {
        const [service, transport] = k.split(' ') as [string, string];
        this.inc({ service, transport });
      }
    },
  });
  new Counter({
    name: 'onehost_rpc_routing_events_total',
    help: 'MOUNT and NFS routing decisions that sent a call to the gateway, by reason.',
    labelNames: ['event'],
    registers: [reg],
    collect() {
      this.reset();
      for (const e of RPC_EVENTS) this.inc({ event: eventName(e) }, s.switchCounters.events[e] ?? 0);
    },
  });
  new Counter({
    name: 'onehost_export_conflicts_total',
    help: 'MOUNT registrations refused because another node claims one of the paths or export ids.',
    labelNames: ['field'],
    registers: [reg],
    collect() {
      this.reset();
      this.inc({ field: 'path' }, s.exports.conflicts.path);
      this.inc({ field: 'export_id' }, s.exports.conflicts.exportId);
    },
  });
}
