/* Capture files for tests: built here so tests need no fixture files. */

/** pcap builds a classic capture: byte order, time unit and link type as asked. */
export function pcap(
  frames: Uint8Array[],
  opts: { le?: boolean; nano?: boolean; linkType?: number; truncateLast?: number } = {},
): Uint8Array {
  const le = opts.le ?? true;
  const size = 24 + frames.reduce((n, f) => n + 16 + f.length, 0);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, opts.nano ? 0xa1b23c4d : 0xa1b2c3d4, le);
  dv.setUint16(4, 2, le);
  dv.setUint16(6, 4, le);
  dv.setUint32(16, 65535, le);
  dv.setUint32(20, opts.linkType ?? 1, le);
  let o = 24;
  frames.forEach((f, i) => {
    dv.setUint32(o, 1_700_000_000 + i, le);
    dv.setUint32(o + 4, opts.nano ? 500_000_000 : 500_000, le);
    dv.setUint32(o + 8, f.length, le);
    dv.setUint32(o + 12, f.length, le);
    out.set(f, o + 16);
    o += 16 + f.length;
  });
  return opts.truncateLast ? out.subarray(0, out.length - opts.truncateLast) : out;
}
