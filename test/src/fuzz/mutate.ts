// The live fuzz's mutator: a seed packet (corpus.ts), re-sourced inside 203.0.113.128/26, with one to
// four mutations biased toward what the gateway parses after the kernel has let a packet through:
// L4 headers, TCP options, UDP lengths, ONC RPC record marks and XDR lengths, ICMP errors' quoted
// headers, fragment bits. The sender's raw socket (IP_HDRINCL) writes the total length and header
// checksum, so the L3 fields ip_rcv checks are not worth mutating; the L4 checksum is mostly right so
// that the node's stack, not a bad sum, is what a packet meets after the gateway.
import { IPPROTO } from '@onehost/wire';
import { CLUSTER_PORTS, l4Checksum, type Seed } from './corpus.js';

/** MAX_PACKET keeps every packet within the outside network's MTU. */
export const MAX_PACKET = 1500;

/** The mutations, by name (the report counts how often each was applied). */
export const MUTATIONS = [
  'l4_bit_flip',
  'payload_bit_flip',
  'interesting_byte',
  'xdr_word',
  'record_mark',
  'truncate',
  'extend',
  'tcp_data_offset',
  'tcp_flags',
  'tcp_options',
  'udp_length',
  'bad_checksum',
  'other_port',
  'other_protocol',
  'fragment',
  'ip_options',
] as const;
type Mutation = (typeof MUTATIONS)[number];

const WEIGHTS: Record<Mutation, number> = {
  l4_bit_flip: 10,
  payload_bit_flip: 10,
  interesting_byte: 8,
  xdr_word: 12,
  record_mark: 6,
  truncate: 8,
  extend: 3,
  tcp_data_offset: 4,
  tcp_flags: 6,
  tcp_options: 6,
  udp_length: 5,
  bad_checksum: 3,
  other_port: 5,
  other_protocol: 2,
  fragment: 4,
  ip_options: 1,
};

const INTERESTING_BYTES = [0, 1, 0x7f, 0x80, 0xff];
const FLAG_SETS = [0x02, 0x10, 0x12, 0x04, 0x14, 0x11, 0x18, 0x01, 0x20, 0xff, 0x00, 0x03, 0x06];
const TCP_OPTION_KINDS = [0, 1, 2, 3, 4, 5, 8, 19, 28, 29, 30, 34, 254];
const SOURCE_BASE = 0xcb007180; // 203.0.113.128

/**
 * Mutator writes mutated packets, deterministically for a seed. `sources` (≤ 64) addresses from
 * 203.0.113.128 and `ports` source ports from 20000 bound the flows a run can create.
 */
export class Mutator {
  readonly applied = new Float64Array(MUTATIONS.length);
  readonly perSeed: Float64Array;
  private x: number;
  private readonly pick: Uint16Array;
  private readonly mutationPick: Uint8Array;

  constructor(
    private readonly seeds: readonly Seed[],
    seed = 1,
    private readonly sources = 64,
    private readonly ports = 256,
  ) {
    if (sources < 1 || sources > 64) throw new RangeError('sources must be 1..64 (203.0.113.128/26)');
    this.x = seed >>> 0 || 1;
    this.perSeed = new Float64Array(seeds.length);
    const pick: number[] = [];
    seeds.forEach((s, i) => {
      for (let k = 0; k < s.weight; k++) pick.push(i);
    });
    this.pick = Uint16Array.from(pick);
    const mp: number[] = [];
    MUTATIONS.forEach((m, i) => {
      for (let k = 0; k < WEIGHTS[m]; k++) mp.push(i);
    });
    this.mutationPick = Uint8Array.from(mp);
  }

  /** rand is xorshift32: fast, and a run is reproducible from its seed. */
  private rand(): number {
    let x = this.x;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.x = x >>> 0;
    return this.x;
  }

  private below(n: number): number {
    return this.rand() % n;
  }

  /** next writes one packet at out[o] (MAX_PACKET bytes of room) and returns its length. */
  next(out: Uint8Array, o: number): number {
    const si = this.pick[this.below(this.pick.length)]!;
    const seed = this.seeds[si]!;
    this.perSeed[si]!++;
    out.set(seed.bytes, o);
    let len = seed.bytes.length;
    const src = SOURCE_BASE + this.below(this.sources);
    out[o + 15] = src & 0xff;
    if (seed.protocol !== IPPROTO.ICMP) {
      const sport = 20000 + this.below(this.ports);
      out[o + 20] = sport >>> 8;
      out[o + 21] = sport & 0xff;
    } else {
      // the quoted packet went to the (re-sourced) sender
      out[o + 47] = src & 0xff;
    }
    let fix = true;
    const n = this.below(4) === 0 ? 2 + this.below(3) : 1;
    for (let k = 0; k < n; k++) {
      const m = this.mutationPick[this.below(this.mutationPick.length)]!;
      this.applied[m]!++;
      const r = this.apply(MUTATIONS[m]!, seed, out, o, len);
      if (r < 0) fix = false;
      else len = r;
    }
    // a fragment's checksum covers the whole datagram, and one with options has the L4 header elsewhere
    const fragment = ((out[o + 6]! & 0x3f) | out[o + 7]!) !== 0;
    if (fix && !fragment && out[o]! === 0x45) l4Checksum(out.subarray(o, o + len), len);
    return len;
  }

  /** apply performs one mutation; returns the new length, or -1 to leave the checksum wrong. */
  private apply(m: Mutation, seed: Seed, b: Uint8Array, o: number, len: number): number {
    const l4 = o + 20;
    const l4Len = len - 20;
    const tcp = b[o + 9] === IPPROTO.TCP;
    switch (m) {
      case 'l4_bit_flip': {
        const hdr = Math.min(l4Len, tcp ? 60 : 8);
        if (hdr > 0) b[l4 + this.below(hdr)]! ^= 1 << this.below(8);
        return len;
      }
      case 'payload_bit_flip': {
        const from = seed.rpc >= 0 ? seed.rpc : seed.payload;
        if (len <= from) return len;
        // most flips land in the first 64 bytes: the RPC header, the quoted header
        const span = this.below(4) === 0 ? len - from : Math.min(64, len - from);
        b[o + from + this.below(span)]! ^= 1 << this.below(8);
        return len;
      }
      case 'interesting_byte':
        if (l4Len > 0) b[l4 + this.below(Math.min(l4Len, 96))] = INTERESTING_BYTES[this.below(5)]!;
        return len;
      case 'xdr_word': {
        const from = seed.rpc >= 0 ? seed.rpc : seed.payload;
        const words = (len - from) >> 2;
        if (words <= 0) return len;
        const at = o + from + 4 * this.below(Math.min(words, 40));
        this.put32(b, at, this.interestingLength(len - from));
        return len;
      }
      case 'record_mark': {
        if (!tcp || seed.rpc < 4) return this.apply('xdr_word', seed, b, o, len);
        const body = len - seed.rpc;
        const choices = [
          0x80000000 | body,
          body,
          0x80000000,
          0x80000000 | (body + 1 + this.below(1000)),
          0x80000000 | Math.max(0, body - 1 - this.below(body)),
          0xffffffff,
          0x7fffffff,
          this.rand(),
        ];
        this.put32(b, o + seed.rpc - 4, choices[this.below(choices.length)]!);
        return len;
      }
      case 'truncate':
        if (l4Len <= 0) return len;
        // at the L4 header, inside it, or inside the payload
        return this.below(3) === 0 ? Math.min(len, seed.payload) : 20 + this.below(l4Len);
      case 'extend': {
        const add = Math.min(1 + this.below(200), MAX_PACKET - len);
        for (let i = 0; i < add; i++) b[o + len + i] = this.rand() & 0xff;
        return len + add;
      }
      case 'tcp_data_offset':
        if (tcp && l4Len >= 13) b[l4 + 12] = (this.below(16) << 4) | (b[l4 + 12]! & 0x0f);
        return len;
      case 'tcp_flags':
        if (tcp && l4Len >= 14)
          b[l4 + 13] = this.below(3) === 0 ? this.rand() & 0xff : FLAG_SETS[this.below(FLAG_SETS.length)]!;
        return len;
      case 'tcp_options': {
        if (!tcp || l4Len < 20) return len;
        // a new option chain of 4..40 bytes after the fixed header, kinds and lengths off the list or not
        const optLen = 4 * (1 + this.below(10));
        const payload = b.slice(l4 + ((b[l4 + 12]! >>> 4) << 2), o + len);
        let i = 0;
        while (i < optLen) {
          const kind = this.below(4) === 0 ? this.rand() & 0xff : TCP_OPTION_KINDS[this.below(13)]!;
          b[l4 + 20 + i++] = kind;
          if (i < optLen) b[l4 + 20 + i++] = this.below(3) === 0 ? this.rand() & 0xff : this.below(12);
        }
        b[l4 + 12] = ((5 + optLen / 4) << 4) | (b[l4 + 12]! & 0x0f);
        const keep = Math.min(payload.length, MAX_PACKET - 40 - optLen);
        b.set(payload.subarray(0, keep), l4 + 20 + optLen);
        return 40 + optLen + keep;
      }
      case 'udp_length': {
        if (b[o + 9] !== IPPROTO.UDP || l4Len < 8) return len;
        const choices = [0, 1, 7, 8, l4Len - 1, l4Len + 1, l4Len + 4096, 0xffff, this.rand() & 0xffff];
        b[l4 + 4] = 0;
        const v = choices[this.below(choices.length)]! & 0xffff;
        b[l4 + 4] = v >>> 8;
        b[l4 + 5] = v & 0xff;
        return len;
      }
      case 'bad_checksum': {
        const at = tcp ? l4 + 16 : l4 + (b[o + 9] === IPPROTO.UDP ? 6 : 2);
        if (at + 2 > o + len) return len;
        // UDP's "no checksum" (0) is legal; anything else random is wrong
        const v = this.below(4) === 0 ? 0 : this.rand() & 0xffff;
        b[at] = v >>> 8;
        b[at + 1] = v & 0xff;
        return -1;
      }
      case 'other_port': {
        if (l4Len < 4 || b[o + 9] === IPPROTO.ICMP) return len;
        const p =
          this.below(3) === 0 ? this.rand() & 0xffff : CLUSTER_PORTS[this.below(CLUSTER_PORTS.length)]!;
        b[l4 + 2] = p >>> 8;
        b[l4 + 3] = p & 0xff;
        return len;
      }
      case 'other_protocol': {
        const protocols = [IPPROTO.TCP, IPPROTO.UDP, IPPROTO.ICMP, 0, 47, 132, this.rand() & 0xff];
        b[o + 9] = protocols[this.below(protocols.length)]!;
        return len;
      }
      case 'fragment': {
        // MF on a first fragment, or a later fragment (no L4 header) with or without MF (RFC 791)
        const offset = this.below(2) === 0 ? 0 : 1 + this.below(185);
        const mf = offset === 0 || this.below(2) === 0 ? 0x20 : 0;
        b[o + 6] = mf | (offset >>> 8);
        b[o + 7] = offset & 0xff;
        b[o + 4] = this.rand() & 0xff;
        b[o + 5] = this.rand() & 0xff;
        return len;
      }
      case 'ip_options': {
        // 4..40 bytes of options before the L4 header: NOPs, an end, or a kind and length at random
        const optLen = 4 * (1 + this.below(10));
        if (len + optLen > MAX_PACKET) return len;
        b.copyWithin(o + 20 + optLen, o + 20, o + len);
        for (let i = 0; i < optLen; i++) {
          const r = this.below(4);
          b[o + 20 + i] = r === 0 ? 1 : r === 1 ? 0 : this.rand() & 0xff;
        }
        b[o] = 0x40 | (5 + optLen / 4);
        return len + optLen;
      }
    }
  }

  /** interestingLength is an XDR length or count worth trying against a body of `room` bytes. */
  private interestingLength(room: number): number {
    const choices = [0, 1, 3, 4, 0xff, 0x100, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff, room, room + 1];
    return choices[this.below(choices.length)]! >>> 0;
  }

  private put32(b: Uint8Array, at: number, v: number): void {
    b[at] = v >>> 24;
    b[at + 1] = (v >>> 16) & 0xff;
    b[at + 2] = (v >>> 8) & 0xff;
    b[at + 3] = v & 0xff;
  }
}
