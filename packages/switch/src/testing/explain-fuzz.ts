import { DecisionOut, KIND } from '../decision.js';
import { MessageSwitch } from '../message-switch.js';
import { configFrom, EXAMPLE_YAML } from './example-config.js';
import { FUZZ_VIP6, fuzzCorpus, mutate, Rng } from './fuzz-corpus.js';

/** EXAMPLE_YAML with an IPv6 cluster address too, so the IPv6 seeds reach the functions. */
const FUZZ_YAML = EXAMPLE_YAML.replace(
  '  - { network: second, address: 203.0.113.11 }',
  `  - { network: second, address: 203.0.113.11 }\n  - { network: outside, address: "${FUZZ_VIP6}" }`,
);

/**
 * runExplainFuzz pushes `runs` random and mutated packets through explain and decide, checking that
 * neither throws and every decision is well formed; returns the number of packets run and how each
 * kind of decision was hit. Throws Error naming the seed and the packet on the first violation.
 */
export function runExplainFuzz(runs: number, seed: number): { runs: number; kinds: number[] } {
  const sw = new MessageSwitch({ clock: () => 0 });
  sw.load(configFrom(FUZZ_YAML));
  const members = new Set(sw.snapshot!.nodes.nodes.map((n) => n.id));
  const corpus = fuzzCorpus();
  const rng = new Rng(seed);
  const out = new DecisionOut();
  const kinds = [0, 0, 0, 0];
  for (let i = 0; i < runs; i++) {
    const pkt = mutate(corpus, rng);
    const now = i * 7;
    let kind: string;
    try {
      const e = sw.explain(pkt, { now, dryRun: (i & 1) === 1 });
      kind = e.decision.kind;
      if (e.trace.length === 0) throw new Error('empty trace');
      if (e.decision.kind === 'forward' && !members.has(e.decision.node))
        throw new Error(`forward to non-member ${e.decision.node}`);
      sw.decide(pkt, 0, pkt.length, now, out);
      if (out.kind !== KIND.FORWARD && out.kind !== KIND.LOCAL && out.kind !== KIND.DROP)
        throw new Error(`kind ${out.kind}`);
      if (out.kind === KIND.FORWARD && !members.has(out.node))
        throw new Error(`forward to non-member ${out.node}`);
      if (out.port !== -1 && (out.port < 1 || out.port > 65535)) throw new Error(`port ${out.port}`);
      kinds[out.kind]!++;
    } catch (err) {
      throw new Error(
        `fuzz seed ${seed} run ${i} packet ${Buffer.from(pkt).toString('hex')}: ${(err as Error).message}`,
      );
    }
    void kind;
  }
  return { runs, kinds };
}
