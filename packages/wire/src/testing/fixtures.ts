import { readFileSync } from 'node:fs';

const root = new URL('../../fixtures/', import.meta.url);

/** loadHex reads a fixture file: `#` lines are provenance comments, every other line one packet in hex. */
export function loadHex(name: string): Buffer[] {
  const text = readFileSync(new URL(name, root), 'utf8');
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => Buffer.from(l, 'hex'));
}

/** loadIpv6Capture reads fixtures/ipv6/lo-capture.json: real IPv6 packets by name (`how` says how made). */
export function loadIpv6Capture(): { name: string; bytes: Buffer }[] {
  const doc = JSON.parse(readFileSync(new URL('ipv6/lo-capture.json', root), 'utf8')) as {
    packets: { name: string; hex: string }[];
  };
  return doc.packets.map((p) => ({ name: p.name, bytes: Buffer.from(p.hex, 'hex') }));
}

/**
 * guarded returns a proxy over `buf` that throws on any index read outside [lo, hi): a getter that read
 * out of bounds would otherwise see `undefined`, which bit arithmetic silently turns into 0.
 */
export function guarded(buf: Uint8Array, lo: number, hi: number): Uint8Array {
  return new Proxy(buf, {
    get(target, prop, _receiver) {
      if (
        typeof prop === 'string' &&
        prop.length > 0 &&
        prop.charCodeAt(0) >= 48 &&
        prop.charCodeAt(0) <= 57
      ) {
        const i = Number(prop);
        if (i < lo || i >= hi) throw new RangeError(`read at ${i} outside [${lo}, ${hi})`);
        return target[i];
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

/** fuzzRuns is the number of cases per property: FUZZ_RUNS, else `dflt` (≥ 100k in CI). */
export function fuzzRuns(dflt = 100_000): number {
  const n = Number(process.env.FUZZ_RUNS);
  return Number.isFinite(n) && n > 0 ? n : dflt;
}
