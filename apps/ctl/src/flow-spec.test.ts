import { describe, expect, it } from 'vitest';
import { parseFlow } from './flow-spec.js';

describe('parseFlow', () => {
  it('reads protocol, endpoints and flags', () => {
    expect(parseFlow('tcp 203.0.113.5:40000 203.0.113.10:443 syn,ack')).toEqual({
      protocol: 'tcp',
      src: '203.0.113.5',
      dst: '203.0.113.10',
      srcPort: 40000,
      dstPort: 443,
      tcpFlags: 0x12,
    });
    expect(parseFlow(' UDP 203.0.113.5:53 203.0.113.10:53 ')).toMatchObject({ protocol: 'udp', srcPort: 53 });
  });
  it('reads IPv6 endpoints in brackets', () => {
    expect(parseFlow('tcp [2001:db8:113::5]:40000 [2001:db8:113::80]:80')).toEqual({
      protocol: 'tcp',
      src: '2001:db8:113::5',
      dst: '2001:db8:113::80',
      srcPort: 40000,
      dstPort: 80,
    });
  });
  it.each([
    ['tcp 203.0.113.5:1', /expected "tcp\|udp SRC:PORT DST:PORT \[flags\]"/],
    ['tcp 203.0.113.5 203.0.113.10:1', /source must be address:port/],
    ['tcp 203.0.113.5:1 203.0.113.10:70000', /destination must be address:port/],
    ['tcp 203.0.113.5:1 203.0.113.10:2 syn,boom', /unknown TCP flag "boom"/],
    ['udp 203.0.113.5:1 203.0.113.10:2 syn', /flags are for tcp flows only/],
    ['tcp 2001:db8::5:1 [2001:db8::80]:80', /source must be address:port like .* or \[2001:db8::5\]:40000/],
    ['tcp [2001:db8::zz]:1 [2001:db8::80]:80', /source must be address:port/],
    ['tcp [2001:db8::5]:1 203.0.113.10:80', /source and destination must be of one address family/],
    ['tcp 203.0.113.256:1 203.0.113.10:80', /source must be address:port/],
  ])('names what is wrong in %j', (text, want) => {
    expect(() => parseFlow(text)).toThrow(want);
  });
});
