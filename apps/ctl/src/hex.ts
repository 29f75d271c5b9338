/**
 * parseHex reads packet bytes written as hex: whitespace, ':' and '-' separators and a leading 0x are
 * allowed. Throws Error naming the problem when the text is not an even number of hex digits.
 */
export function parseHex(text: string): Uint8Array {
  const clean = text
    .trim()
    .replace(/^0x/i, '')
    .replace(/[\s:-]/g, '');
  if (clean.length === 0) throw new Error('no bytes given');
  if (!/^[0-9a-fA-F]*$/.test(clean)) {
    const bad = clean.match(/[^0-9a-fA-F]/)![0];
    throw new Error(`not hex: unexpected ${JSON.stringify(bad)}`);
  }
  if (clean.length % 2 !== 0) throw new Error(`odd number of hex digits (${clean.length})`);
  return Uint8Array.from(Buffer.from(clean, 'hex'));
}
