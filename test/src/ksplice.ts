import type { HostRef, Lab } from '@onehost/lab';

/** STAT indices of packages/ksplice/bpf/splice.bpf.c's ks_stats. */
const STAT = { nodeShifted: 0, nodeNoFlow: 1, gatewayShifted: 2 } as const;

async function json<T>(lab: Lab, host: HostRef, args: string[]): Promise<T> {
  return JSON.parse((await lab.exec(host, 'bpftool', ['-j', ...args])).stdout) as T;
}

/**
 * kernelSpliceCounters reads the counters of the spliced-flows tc program attached to `dev` on `host`
 * (the one the agent or gateway there loaded): found through the device, as a restarted daemon finds
 * it. Null when no such program is attached.
 */
export async function kernelSpliceCounters(
  lab: Lab,
  host: HostRef,
  dev: string,
): Promise<{ nodeShifted: number; nodeNoFlow: number; gatewayShifted: number } | null> {
  const net = await json<Array<{ tc: Array<{ devname: string; name: string; id: number }> }>>(lab, host, [
    'net',
    'show',
    'dev',
    dev,
  ]);
  const prog = net[0]?.tc.find((p) => p.name.startsWith('ks_'));
  if (prog === undefined) return null;
  const show = await json<{ map_ids: number[] }>(lab, host, ['prog', 'show', 'id', String(prog.id)]);
  for (const id of show.map_ids) {
    const m = await json<{ name: string }>(lab, host, ['map', 'show', 'id', String(id)]);
    if (m.name !== 'ks_stats') continue;
    const sum = async (i: number) => {
      const r = await json<{
        values?: Array<{ value: number }>;
        formatted?: { values: Array<{ value: number }> };
      }>(lab, host, ['map', 'lookup', 'id', String(id), 'key', String(i), '0', '0', '0']);
      const values = r.formatted?.values ?? r.values ?? [];
      return values.reduce((a, v) => a + Number(v.value), 0);
    };
    return {
      nodeShifted: await sum(STAT.nodeShifted),
      nodeNoFlow: await sum(STAT.nodeNoFlow),
      gatewayShifted: await sum(STAT.gatewayShifted),
    };
  }
  return null;
}
