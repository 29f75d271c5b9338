import { describe, expect, it } from 'vitest';
import { GatewayLiveness } from './gateway-liveness.js';

const [G1, G2, G3] = ['198.18.0.1', '198.18.0.2', '198.18.0.3'];

describe('GatewayLiveness: the gateways the node routes its replies through', () => {
  it('keeps gateways never heard, leaves out one silent for longer than silentMs, takes it back when it probes', () => {
    const l = new GatewayLiveness([G1, G2, G3], 800);
    expect(l.live(0)).toEqual([G1, G2, G3]);
    l.heard(G1, 0);
    l.heard(G2, 0);
    expect(l.live(800)).toEqual([G1, G2, G3]);
    l.heard(G1, 700);
    expect(l.live(801)).toEqual([G1, G3]); // G2 silent since 0; G3 never probed: kept
    l.heard(G2, 900);
    expect(l.live(900)).toEqual([G1, G2, G3]);
  });

  it('keeps every gateway when all are silent, and ignores probes from strangers', () => {
    const l = new GatewayLiveness([G1, G2], 800);
    l.heard(G1, 0);
    l.heard(G2, 0);
    l.heard('198.18.0.99', 5000);
    expect(l.live(5000)).toEqual([G1, G2]);
  });
});
