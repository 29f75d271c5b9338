import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { cpus, endianness } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpfMap, runCommand } from '@onehost/kernel';
import {
  decodeGateway6Flow,
  decodeGatewayFlow,
  decodeNode6Flow,
  decodeNodeFlow,
  encodeGateway6Key,
  encodeGatewayKey,
  encodeGatewayValue,
  encodeNode6Key,
  encodeNodeKey,
  encodeNodeValue,
  type GatewayFlow,
  type GatewayFlow6,
  GW_KEY_SIZE,
  GW_VALUE_SIZE,
  GW6_KEY_SIZE,
  NODE_KEY_SIZE,
  NODE_VALUE_SIZE,
  NODE6_KEY_SIZE,
  type NodeFlow,
  type NodeFlow6,
  STAT,
} from './maps.js';

const LE = endianness() === 'LE';

/** The object `npm run build` compiles from bpf/splice.bpf.c. */
export const BPF_OBJECT = join(dirname(fileURLToPath(import.meta.url)), 'splice.bpf.o');
/** Preference of our tc filter on each device (one per hook, ours alone). */
export const TC_PREF = 7472;

export type SpliceSide = 'node' | 'gateway';

const PROG: Record<SpliceSide, { name: string; hook: 'egress' | 'ingress'; map: string; map6: string }> = {
  node: { name: 'ks_node_out', hook: 'egress', map: 'ks_node', map6: 'ks_node6' },
  gateway: { name: 'ks_gw_in', hook: 'ingress', map: 'ks_gw', map6: 'ks_gw6' },
};

export interface KernelSpliceOptions {
  /**
   * A directory of this process's own (under its state directory): a bpffs is mounted there for the
   * pins that loading needs. The lab runs daemons with `ip netns exec`, which gives each its own mount
   * namespace, so the pins go with the process; a successor finds the programs on its devices instead.
   */
  dir: string;
  side: SpliceSide;
  /** Ethernet devices to attach to: the node's outgoing ones (egress), the gateway's outside ones (ingress). */
  devices: readonly string[];
  /** The compiled object (default BPF_OBJECT). */
  object?: string;
}

export interface KernelSpliceCounters {
  /** node → client segments (super-packets count once) shifted by the node's program */
  nodeShifted: number;
  /** segments the agent's rule marked whose flow was not in the map: left as they were */
  nodeNoFlow: number;
  /** client → node segments shifted and marked by the gateway's program */
  gatewayShifted: number;
}

interface TcFilter {
  pref?: number;
  options?: { prog?: { id: number; name: string } };
}

async function tcFilterProg(dev: string, hook: string): Promise<{ id: number; name: string } | undefined> {
  const out = await runCommand('tc', ['-j', 'filter', 'show', 'dev', dev, hook]).catch(() => '[]');
  const list = JSON.parse(out.trim() === '' ? '[]' : out) as TcFilter[];
  return list.find((f) => f.pref === TC_PREF && f.options?.prog !== undefined)?.options?.prog;
}

function isBpffs(dir: string): boolean {
  // mountinfo: "id parent maj:min root mountpoint options ... - fstype source super-options"
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => {
      const [pre, post] = l.split(' - ');
      return pre?.split(' ')[4] === dir && post?.startsWith('bpf ');
    });
}

/**
 * KernelSplice is one process's tc program for spliced flows (docs/splice.md, "In the kernel"): it
 * loads bpf/splice.bpf.o, attaches the side's program to the devices, and reads and writes its flow
 * map by bpf(2) system calls (synchronous: one per handover, none per packet). A predecessor's program
 * found on the first device is adopted with its map and flows (`adopted`).
 */
export class KernelSplice {
  private readonly key: Uint8Array;
  private readonly key6: Uint8Array;
  private readonly value: Uint8Array;
  private readonly statValue: Uint8Array;
  private closed = false;

  private constructor(
    private readonly o: KernelSpliceOptions,
    private readonly flows: BpfMap,
    private readonly flows6: BpfMap,
    private readonly stats: BpfMap,
    readonly adopted: boolean,
    private readonly attached: string[],
  ) {
    const node = o.side === 'node';
    this.key = new Uint8Array(node ? NODE_KEY_SIZE : GW_KEY_SIZE);
    this.key6 = new Uint8Array(node ? NODE6_KEY_SIZE : GW6_KEY_SIZE);
    this.value = new Uint8Array(node ? NODE_VALUE_SIZE : GW_VALUE_SIZE);
    this.statValue = new Uint8Array(stats.valueSize);
  }

  /**
   * open loads (or adopts) and attaches the program. Throws a CommandError when the kernel, tc or
   * bpftool refuses, an Error when the object is missing; what was set up is taken down again.
   */
  static async open(o: KernelSpliceOptions): Promise<KernelSplice> {
    const p = PROG[o.side];
    const object = o.object ?? BPF_OBJECT;
    if (!existsSync(object))
      throw new Error(`${object} is missing: build @onehost/ksplice (clang, libbpf-dev)`);
    if (o.devices.length === 0) throw new Error('no device to attach the spliced flows program to');
    // libbpf writes map pins with every dot of the path turned into an underscore.
    if (o.dir.includes('.')) throw new Error(`${o.dir}: the bpffs directory's path must have no dot`);
    await mkdir(o.dir, { recursive: true });
    if (!isBpffs(o.dir)) await runCommand('mount', ['-t', 'bpf', 'bpf', o.dir]);
    const progPin = join(o.dir, 'progs', p.name);
    const attached: string[] = [];
    let flows: BpfMap | undefined;
    let flows6: BpfMap | undefined;
    let stats: BpfMap | undefined;
    try {
      // A predecessor killed without cleaning up left its program on the devices: adopt its maps.
      const old = await tcFilterProg(o.devices[0]!, p.hook);
      let adopted = false;
      if (old !== undefined && old.name === p.name) {
        const show = JSON.parse(
          await runCommand('bpftool', ['-j', 'prog', 'show', 'id', String(old.id)]),
        ) as {
          map_ids?: number[];
        };
        for (const id of show.map_ids ?? []) {
          const m = JSON.parse(await runCommand('bpftool', ['-j', 'map', 'show', 'id', String(id)])) as {
            name: string;
          };
          if (m.name === p.map) flows = BpfMap.openById(id, ...sizes(o.side));
          else if (m.name === p.map6) flows6 = BpfMap.openById(id, ...sizes6(o.side));
          else if (m.name === 'ks_stats') stats = BpfMap.openById(id, 4, statSize());
        }
        // a program of before IPv6 has no ks_*6: loaded again, its flows lost (once, at the upgrade)
        if (flows !== undefined && flows6 !== undefined && stats !== undefined) {
          adopted = true;
          if (!existsSync(progPin)) {
            await mkdir(dirname(progPin), { recursive: true });
            await runCommand('bpftool', ['prog', 'pin', 'id', String(old.id), progPin]);
          }
        }
      }
      if (!adopted) {
        flows?.close();
        flows6?.close();
        stats?.close();
        await rm(join(o.dir, 'progs'), { recursive: true, force: true });
        await rm(join(o.dir, 'maps'), { recursive: true, force: true });
        await runCommand('bpftool', [
          'prog',
          'loadall',
          object,
          join(o.dir, 'progs'),
          'type',
          'classifier',
          'pinmaps',
          join(o.dir, 'maps'),
        ]);
        flows = BpfMap.open(join(o.dir, 'maps', p.map), ...sizes(o.side));
        flows6 = BpfMap.open(join(o.dir, 'maps', p.map6), ...sizes6(o.side));
        stats = BpfMap.open(join(o.dir, 'maps', 'ks_stats'), 4, statSize());
      }
      for (const dev of o.devices) {
        await runCommand('tc', ['qdisc', 'replace', 'dev', dev, 'clsact']);
        // One filter per hook at our preference: replacing it swaps the program without a gap.
        await runCommand('tc', [
          'filter',
          'replace',
          'dev',
          dev,
          p.hook,
          'pref',
          String(TC_PREF),
          'handle',
          '1',
          'bpf',
          'object-pinned',
          progPin,
          'direct-action',
        ]);
        attached.push(dev);
      }
      return new KernelSplice(o, flows!, flows6!, stats!, adopted, attached);
    } catch (err) {
      flows?.close();
      flows6?.close();
      stats?.close();
      await detach(attached, p.hook).catch(() => undefined);
      await unpin(o.dir).catch(() => undefined);
      throw err;
    }
  }

  get side(): SpliceSide {
    return this.o.side;
  }

  /** devices lists where the program is attached. */
  get devices(): readonly string[] {
    return this.attached;
  }

  /** setNodeFlow makes the node's program shift a flow (replacing an entry of the same key). */
  setNodeFlow(f: NodeFlow): void {
    this.flows.update(encodeNodeKey(f, this.key), encodeNodeValue(f, this.value));
  }

  /** deleteNodeFlow stops shifting a flow; false when it was not there. */
  deleteNodeFlow(f: Pick<NodeFlow, 'clientAddr' | 'clusterAddr' | 'clientPort' | 'nodePort'>): boolean {
    return this.flows.delete(encodeNodeKey(f, this.key));
  }

  /** nodePackets is the packet count of a flow's entry (-1: no entry). */
  nodePackets(f: Pick<NodeFlow, 'clientAddr' | 'clusterAddr' | 'clientPort' | 'nodePort'>): number {
    if (!this.flows.lookup(encodeNodeKey(f, this.key), this.value)) return -1;
    return Number(new DataView(this.value.buffer, this.value.byteOffset).getBigUint64(16, LE));
  }

  /** nodeFlows lists the node's map (with the packets each flow's entry counted). */
  nodeFlows(): Array<NodeFlow & { packets: number }> {
    return this.flows
      .keys()
      .flatMap((k) => (this.flows.lookup(k, this.value) ? [decodeNodeFlow(k, this.value)] : []));
  }

  /** setGatewayFlow makes the gateway's program shift and route a flow. */
  setGatewayFlow(f: GatewayFlow): void {
    this.flows.update(encodeGatewayKey(f, this.key), encodeGatewayValue(f, this.value));
  }

  /** deleteGatewayFlow stops shifting a flow in the gateway; false when it was not there. */
  deleteGatewayFlow(f: Pick<GatewayFlow, 'clientAddr' | 'clientPort' | 'clusterPort'>): boolean {
    return this.flows.delete(encodeGatewayKey(f, this.key));
  }

  /** gatewayPackets is the packet count of a flow's entry (-1: no entry). */
  gatewayPackets(f: Pick<GatewayFlow, 'clientAddr' | 'clientPort' | 'clusterPort'>): number {
    if (!this.flows.lookup(encodeGatewayKey(f, this.key), this.value)) return -1;
    return Number(new DataView(this.value.buffer, this.value.byteOffset).getBigUint64(16, LE));
  }

  /** gatewayFlows lists the gateway's map. */
  gatewayFlows(): Array<GatewayFlow & { packets: number }> {
    return this.flows
      .keys()
      .flatMap((k) => (this.flows.lookup(k, this.value) ? [decodeGatewayFlow(k, this.value)] : []));
  }

  /** setNodeFlow6 is setNodeFlow for an IPv6 flow (ks_node6). */
  setNodeFlow6(f: NodeFlow6): void {
    this.flows6.update(encodeNode6Key(f, this.key6), encodeNodeValue(f, this.value));
  }

  /** deleteNodeFlow6 is deleteNodeFlow for an IPv6 flow. */
  deleteNodeFlow6(f: Pick<NodeFlow6, 'clientAddr' | 'clusterAddr' | 'clientPort' | 'nodePort'>): boolean {
    return this.flows6.delete(encodeNode6Key(f, this.key6));
  }

  /** nodePackets6 is nodePackets for an IPv6 flow. */
  nodePackets6(f: Pick<NodeFlow6, 'clientAddr' | 'clusterAddr' | 'clientPort' | 'nodePort'>): number {
    if (!this.flows6.lookup(encodeNode6Key(f, this.key6), this.value)) return -1;
    return Number(new DataView(this.value.buffer, this.value.byteOffset).getBigUint64(16, LE));
  }

  /** nodeFlows6 lists the node's IPv6 map. */
  nodeFlows6(): Array<NodeFlow6 & { packets: number }> {
    return this.flows6
      .keys()
      .flatMap((k) => (this.flows6.lookup(k, this.value) ? [decodeNode6Flow(k, this.value)] : []));
  }

  /** setGatewayFlow6 is setGatewayFlow for an IPv6 flow (ks_gw6). */
  setGatewayFlow6(f: GatewayFlow6): void {
    this.flows6.update(encodeGateway6Key(f, this.key6), encodeGatewayValue(f, this.value));
  }

  /** deleteGatewayFlow6 is deleteGatewayFlow for an IPv6 flow. */
  deleteGatewayFlow6(f: Pick<GatewayFlow6, 'clientAddr' | 'clientPort' | 'clusterPort'>): boolean {
    return this.flows6.delete(encodeGateway6Key(f, this.key6));
  }

  /** gatewayPackets6 is gatewayPackets for an IPv6 flow. */
  gatewayPackets6(f: Pick<GatewayFlow6, 'clientAddr' | 'clientPort' | 'clusterPort'>): number {
    if (!this.flows6.lookup(encodeGateway6Key(f, this.key6), this.value)) return -1;
    return Number(new DataView(this.value.buffer, this.value.byteOffset).getBigUint64(16, LE));
  }

  /** gatewayFlows6 lists the gateway's IPv6 map. */
  gatewayFlows6(): Array<GatewayFlow6 & { packets: number }> {
    return this.flows6
      .keys()
      .flatMap((k) => (this.flows6.lookup(k, this.value) ? [decodeGateway6Flow(k, this.value)] : []));
  }

  /** counters sums the programs' per-CPU counters. */
  counters(): KernelSpliceCounters {
    const sum = (i: number): number => {
      const k = Uint8Array.of(i, 0, 0, 0);
      if (!this.stats.lookup(k, this.statValue)) return 0;
      const v = new DataView(this.statValue.buffer, this.statValue.byteOffset, this.statValue.byteLength);
      let n = 0n;
      for (let at = 0; at + 8 <= this.statValue.length; at += 8) n += v.getBigUint64(at, true);
      return Number(n);
    };
    return {
      nodeShifted: sum(STAT.NODE_SHIFTED),
      nodeNoFlow: sum(STAT.NODE_NO_FLOW),
      gatewayShifted: sum(STAT.GW_SHIFTED),
    };
  }

  /**
   * close detaches the program and removes the pins and the bpffs: the kernel frees program and maps.
   * With `keep` (a hand-over to the next process) it only closes this process's descriptors: the
   * program stays attached and keeps shifting. Safe to call twice; throws when tc refuses.
   */
  async close(keep = false): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.flows.close();
    this.flows6.close();
    this.stats.close();
    if (keep) return;
    await detach(this.attached, PROG[this.o.side].hook);
    await unpin(this.o.dir);
  }
}

function sizes(side: SpliceSide): [number, number] {
  return side === 'node' ? [NODE_KEY_SIZE, NODE_VALUE_SIZE] : [GW_KEY_SIZE, GW_VALUE_SIZE];
}

function sizes6(side: SpliceSide): [number, number] {
  return side === 'node' ? [NODE6_KEY_SIZE, NODE_VALUE_SIZE] : [GW6_KEY_SIZE, GW_VALUE_SIZE];
}

let possible = 0;
/** statSize is a per-CPU value's size: 8 bytes for each possible CPU. */
function statSize(): number {
  if (possible === 0) {
    // "0-1" or "0,2-3": the kernel sizes per-CPU values by the highest possible CPU + 1.
    try {
      const text = readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim();
      possible = Math.max(...text.split(/[,-]/).map(Number)) + 1;
    } catch {
      possible = cpus().length;
    }
  }
  return 8 * possible;
}

async function detach(devices: readonly string[], hook: string): Promise<void> {
  for (const dev of devices) {
    await runCommand('tc', ['filter', 'del', 'dev', dev, hook, 'pref', String(TC_PREF)]).catch(
      () => undefined,
    );
    // The clsact qdisc goes too once nothing else is on it.
    const left = async (h: string) =>
      (
        JSON.parse(
          (await runCommand('tc', ['-j', 'filter', 'show', 'dev', dev, h]).catch(() => '[]')) || '[]',
        ) as unknown[]
      ).length;
    if ((await left('ingress')) === 0 && (await left('egress')) === 0)
      await runCommand('tc', ['qdisc', 'del', 'dev', dev, 'clsact']).catch(() => undefined);
  }
}

async function unpin(dir: string): Promise<void> {
  await rm(join(dir, 'progs'), { recursive: true, force: true });
  await rm(join(dir, 'maps'), { recursive: true, force: true });
  if (isBpffs(dir)) await runCommand('umount', [dir]);
  await rm(dir, { recursive: true, force: true });
}
