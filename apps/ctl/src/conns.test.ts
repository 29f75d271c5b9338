import { describe, expect, it } from 'vitest';
import { clientText } from './cluster-commands.js';

describe('conns: the CLIENT column', () => {
  it('brackets IPv6 addresses as explain --flow takes them (RFC 5952 §6), not IPv4 ones', () => {
    expect(clientText('203.0.113.5', 40000)).toBe('203.0.113.5:40000');
    expect(clientText('2001:db8:113::5', 40000)).toBe('[2001:db8:113::5]:40000');
    // a kernel IPv6 flow the switch does not know: its key is a hash, the address unknown
    expect(clientText('?', 40000)).toBe('[?]:40000');
  });
});
