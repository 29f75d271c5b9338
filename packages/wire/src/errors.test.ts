import { describe, expect, it } from 'vitest';
import { allErrors, checked, defineError, errorInfo, OK } from './errors.js';
import './index.js';

describe('wire error registry', () => {
  it('lists every code once, with a kind and a snake_case name', () => {
    const all = allErrors();
    expect(all.length).toBeGreaterThan(15);
    expect(new Set(all.map((e) => e.code)).size).toBe(all.length);
    expect(new Set(all.map((e) => e.name)).size).toBe(all.length);
    for (const e of all) {
      expect(e.name).toMatch(/^[a-z0-9_]+$/);
      expect(['truncated', 'malformed']).toContain(e.kind);
    }
    expect(errorInfo(OK)).toBeUndefined();
  });

  it('refuses a code defined twice', () => {
    const code = allErrors()[0]!.code;
    expect(() => defineError(code, 'malformed', 'again')).toThrow(/defined twice/);
  });

  it('checked wraps unknown codes without throwing', () => {
    const r = checked(59_999, null);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.name).toBe('unknown_59999');
  });
});
