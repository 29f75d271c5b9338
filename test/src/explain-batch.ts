#!/usr/bin/env node
// explain-batch: many Explain calls (dry runs) over one channel, for the differential tests. Runs inside
// the gateway host's namespace (where the control plane listens); flows come on stdin as JSON
// [{protocol, src, sport, dport}], the answer goes to stdout as JSON {key: {to, path}}.
//   node explain-batch.js <gateway host:port> <ca> <cert> <key> <cluster address> <flags>
import { readFile } from 'node:fs/promises';
import { connectSwitch } from '@onehost/control';
import { DecisionKind, Transport } from '@onehost/proto';
import { ipv4ToString } from '@onehost/wire';

interface Flow {
  protocol: 'tcp' | 'udp';
  src: number;
  sport: number;
  dport: number;
}

async function main(): Promise<void> {
  const [target, ca, cert, key, vip, flags] = process.argv.slice(2) as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const flows = JSON.parse(input) as Flow[];
  const sw = connectSwitch(
    target,
    {
      caPem: await readFile(ca, 'utf8'),
      certPem: await readFile(cert, 'utf8'),
      keyPem: await readFile(key, 'utf8'),
    },
    { deadlineMs: 30_000 },
  );
  const out: Record<string, { to: string; path: string }> = {};
  let next = 0;
  const worker = async () => {
    while (next < flows.length) {
      const f = flows[next++]!;
      const r = await sw.explain({
        input: {
          $case: 'flow',
          value: {
            protocol: f.protocol === 'tcp' ? Transport.TRANSPORT_TCP : Transport.TRANSPORT_UDP,
            srcAddress: ipv4ToString(f.src),
            srcPort: f.sport,
            dstAddress: vip,
            dstPort: f.dport,
            tcpFlags: f.protocol === 'tcp' ? flags : '',
            payload: Buffer.alloc(0),
          },
        },
        updateTables: false,
      });
      const d = r.decision!;
      const to =
        d.kind === DecisionKind.DECISION_KIND_FORWARD
          ? d.nodeName
          : d.kind === DecisionKind.DECISION_KIND_LOCAL
            ? 'local'
            : `drop:${d.dropReason}`;
      out[`${ipv4ToString(f.src)}:${f.sport}:${f.dport}`] = { to, path: r.path };
    }
  };
  try {
    await Promise.all(Array.from({ length: 64 }, worker));
  } finally {
    sw.close();
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((e: unknown) => {
  process.stderr.write(`explain-batch: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
