import { describe, expect, it } from 'vitest';
import {
  decodeGatewayFlow,
  decodeNodeFlow,
  encodeGatewayKey,
  encodeGatewayValue,
  encodeNodeKey,
  encodeNodeValue,
  GW_KEY_SIZE,
  GW_VALUE_SIZE,
  NODE_KEY_SIZE,
  NODE_VALUE_SIZE,
} from './maps.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('ks_node entries (bpf/splice.bpf.c struct node_key, node_val)', () => {
  const flow = {
    clientAddr: 0xcb007107, // 203.0.113.7
    clusterAddr: 0xcb007150, // 203.0.113.80
    clientPort: 0x9c40,
    nodePort: 2049,
    clusterPort: 2049,
    sOff: -5, // offsets are modulo 2^32: a negative one is stored as its two's complement
    tsOff: 0x12345678,
    nodeWscale: 7,
    gatewayWscale: 9,
  };

  it('puts addresses and ports in network order, offsets in the host order', () => {
    const k = encodeNodeKey(flow, new Uint8Array(NODE_KEY_SIZE));
    expect(hex(k)).toBe('cb007107cb0071509c400801');
    const v = encodeNodeValue(flow, new Uint8Array(NODE_VALUE_SIZE));
    // x86 and arm64 are little-endian; the program reads the u32s natively
    expect(hex(v)).toBe(`fbffffff78563412080107090000000000000000${'00000000'}`);
  });

  it('round-trips, with the counter the program keeps', () => {
    const k = encodeNodeKey(flow, new Uint8Array(NODE_KEY_SIZE));
    const v = encodeNodeValue(flow, new Uint8Array(NODE_VALUE_SIZE));
    v[16] = 3;
    expect(decodeNodeFlow(k, v)).toEqual({ ...flow, packets: 3 });
  });
});

describe('ks_gw entries (struct gw_key, gw_val)', () => {
  const flow = {
    clientAddr: 0xcb007107,
    clientPort: 40000,
    clusterPort: 635,
    nodePort: 20048,
    sOff: 0x80000000 | 0,
    tsOff: -1,
    mark: 0x4f480002,
  };

  it('round-trips', () => {
    const k = encodeGatewayKey(flow, new Uint8Array(GW_KEY_SIZE));
    expect(hex(k)).toBe('cb0071079c40027b');
    const v = encodeGatewayValue(flow, new Uint8Array(GW_VALUE_SIZE));
    expect(decodeGatewayFlow(k, v)).toEqual({ ...flow, packets: 0 });
  });
});
