import { parseIpv6 } from '@onehost/wire';
import { describe, expect, it } from 'vitest';
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
  GW_KEY_SIZE,
  GW_VALUE_SIZE,
  GW6_KEY_SIZE,
  NODE_KEY_SIZE,
  NODE_VALUE_SIZE,
  NODE6_KEY_SIZE,
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

describe("ks_node6 and ks_gw6 entries (struct node6_key, gw6_key; the IPv4 maps' values)", () => {
  const client = parseIpv6('2001:db8:113::7');
  const cluster = parseIpv6('2001:db8:113::80');

  it('puts the 16-byte addresses first, then the ports in network order, and round-trips', () => {
    const node = {
      clientAddr: client,
      clusterAddr: cluster,
      clientPort: 0x9c40,
      nodePort: 2049,
      clusterPort: 2049,
      sOff: -5,
      tsOff: 7,
      nodeWscale: 7,
      gatewayWscale: 9,
    };
    const k = encodeNode6Key(node, new Uint8Array(NODE6_KEY_SIZE));
    expect(hex(k)).toBe(`${hex(client)}${hex(cluster)}9c400801`);
    const v = encodeNodeValue(node, new Uint8Array(NODE_VALUE_SIZE));
    expect(decodeNode6Flow(k, v)).toEqual({ ...node, packets: 0 });
    const gw = {
      clientAddr: client,
      clientPort: 40000,
      clusterPort: 2049,
      nodePort: 2050,
      sOff: 1,
      tsOff: -1,
      mark: 9,
    };
    const gk = encodeGateway6Key(gw, new Uint8Array(GW6_KEY_SIZE));
    expect(hex(gk)).toBe(`${hex(client)}9c400801`);
    expect(decodeGateway6Flow(gk, encodeGatewayValue(gw, new Uint8Array(GW_VALUE_SIZE)))).toEqual({
      ...gw,
      packets: 0,
    });
  });

  it('refuses an address that is not 16 bytes, naming the field', () => {
    const bad = { clientAddr: client, clusterAddr: new Uint8Array(4), clientPort: 1, nodePort: 2 };
    expect(() => encodeNode6Key(bad, new Uint8Array(NODE6_KEY_SIZE))).toThrow(
      /clusterAddr: .*16 bytes, not 4/,
    );
    expect(() =>
      encodeGateway6Key(
        { clientAddr: new Uint8Array(15), clientPort: 1, clusterPort: 2 },
        new Uint8Array(GW6_KEY_SIZE),
      ),
    ).toThrow(/clientAddr/);
  });
});
