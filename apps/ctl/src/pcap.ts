/**
 * Capture files for `explain --pcap`: classic libpcap (any byte order, micro- or nanosecond stamps) and
 * pcapng (section, interface and enhanced/simple packet blocks). Yields the IP packet (IPv4 or IPv6) of
 * each frame for the link types tcpdump and Wireshark write on Linux, or why a frame was skipped. Every length read
 * from the file is checked against what is there before use.
 */

/** A frame of the capture: its IP packet (IPv4 or IPv6), or the reason there is none. */
export type CaptureFrame =
  | { index: number; timeMs: number; ip: Uint8Array }
  | { index: number; timeMs: number; skipped: string };

/** Link types (tcpdump.org linktypes). */
const LINK = { ETHERNET: 1, RAW: 101, LINUX_SLL: 113, IPV4: 228, IPV6: 229, LINUX_SLL2: 276 } as const;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = [0x8100, 0x88a8];
/** MAX_FRAME caps a captured frame (the largest snaplen tools write). */
const MAX_FRAME = 262_144;

/** CaptureError is thrown for a file that is not a capture we can read (with what is wrong). */
export class CaptureError extends Error {}

/** versionCheck returns the frame when its IP version is one of `versions`, else why not. */
function versionCheck(frame: Uint8Array, versions: readonly number[]): Uint8Array | string {
  const v = frame.length > 0 ? frame[0]! >> 4 : -1;
  return versions.includes(v) ? frame : `not IP (version ${v < 0 ? '?' : v})`;
}

function ipOf(linkType: number, frame: Uint8Array): Uint8Array | string {
  let off: number;
  let etherType: number;
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  switch (linkType) {
    case LINK.RAW:
      return versionCheck(frame, [4, 6]);
    case LINK.IPV4:
      return versionCheck(frame, [4]);
    case LINK.IPV6:
      return versionCheck(frame, [6]);
    case LINK.ETHERNET: {
      if (frame.length < 14) return 'truncated Ethernet header';
      off = 12;
      etherType = dv.getUint16(off);
      off += 2;
      while (ETHERTYPE_VLAN.includes(etherType)) {
        if (frame.length < off + 4) return 'truncated VLAN tag';
        etherType = dv.getUint16(off + 2);
        off += 4;
      }
      break;
    }
    case LINK.LINUX_SLL:
      if (frame.length < 16) return 'truncated Linux cooked header';
      etherType = dv.getUint16(14);
      off = 16;
      break;
    case LINK.LINUX_SLL2:
      if (frame.length < 20) return 'truncated Linux cooked v2 header';
      etherType = dv.getUint16(0);
      off = 20;
      break;
    default:
      return `link type ${linkType} is not supported`;
  }
  if (etherType === ETHERTYPE_IPV4) return versionCheck(frame.subarray(off), [4]);
  if (etherType === ETHERTYPE_IPV6) return versionCheck(frame.subarray(off), [6]);
  return `not IP (ethertype 0x${etherType.toString(16).padStart(4, '0')})`;
}

/**
 * readCapture returns every frame of a pcap or pcapng file. Throws CaptureError when the file is neither
 * or its structure is broken (a truncated last record is reported as a skipped frame instead).
 */
export function readCapture(file: Uint8Array): CaptureFrame[] {
  if (file.length < 4) throw new CaptureError('file too short for a capture header');
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const magicBE = dv.getUint32(0, false);
  if (magicBE === 0x0a0d0d0a) return readPcapng(file, dv);
  const little = dv.getUint32(0, true);
  let le: boolean;
  let nano: boolean;
  if (little === 0xa1b2c3d4 || little === 0xa1b23c4d) {
    le = true;
    nano = little === 0xa1b23c4d;
  } else if (magicBE === 0xa1b2c3d4 || magicBE === 0xa1b23c4d) {
    le = false;
    nano = magicBE === 0xa1b23c4d;
  } else
    throw new CaptureError(`not a pcap or pcapng file (magic 0x${magicBE.toString(16).padStart(8, '0')})`);
  if (file.length < 24) throw new CaptureError('truncated pcap file header');
  const linkType = dv.getUint32(20, le) & 0x0fffffff;
  const frames: CaptureFrame[] = [];
  let off = 24;
  while (off < file.length) {
    const index = frames.length;
    if (off + 16 > file.length) {
      frames.push({ index, timeMs: 0, skipped: 'truncated record header at the end of the file' });
      break;
    }
    const sec = dv.getUint32(off, le);
    const frac = dv.getUint32(off + 4, le);
    const incl = dv.getUint32(off + 8, le);
    const timeMs = sec * 1000 + (nano ? frac / 1e6 : frac / 1e3);
    if (incl > MAX_FRAME) throw new CaptureError(`record ${index} claims ${incl} bytes (over ${MAX_FRAME})`);
    if (off + 16 + incl > file.length) {
      frames.push({ index, timeMs, skipped: 'truncated record at the end of the file' });
      break;
    }
    const ip = ipOf(linkType, file.subarray(off + 16, off + 16 + incl));
    frames.push(typeof ip === 'string' ? { index, timeMs, skipped: ip } : { index, timeMs, ip });
    off += 16 + incl;
  }
  return frames;
}

function readPcapng(file: Uint8Array, dv: DataView): CaptureFrame[] {
  const frames: CaptureFrame[] = [];
  let le = true;
  let interfaces: { linkType: number; unitsPerSec: number }[] = [];
  let off = 0;
  while (off + 12 <= file.length) {
    const type = dv.getUint32(off, le);
    if (type === 0x0a0d0d0a) {
      const bom = dv.getUint32(off + 8, true);
      if (bom === 0x1a2b3c4d) le = true;
      else if (bom === 0x4d3c2b1a) le = false;
      else throw new CaptureError(`pcapng section at ${off} has a bad byte-order magic`);
      interfaces = [];
    }
    const len = dv.getUint32(off + 4, le);
    if (len < 12 || len % 4 !== 0 || off + len > file.length)
      throw new CaptureError(`pcapng block at ${off} has a bad length ${len}`);
    if (type === 1) {
      // Interface Description Block: link type, then options; if_tsresol (9) sets the time unit.
      const linkType = dv.getUint16(off + 8, le);
      let unitsPerSec = 1e6;
      let o = off + 16;
      while (o + 4 <= off + len - 4) {
        const code = dv.getUint16(o, le);
        const olen = dv.getUint16(o + 2, le);
        if (code === 0) break;
        if (code === 9 && olen >= 1 && o + 4 < off + len) {
          const r = file[o + 4]!;
          unitsPerSec = r & 0x80 ? 2 ** (r & 0x7f) : 10 ** r;
        }
        o += 4 + ((olen + 3) & ~3);
      }
      interfaces.push({ linkType, unitsPerSec });
    } else if (type === 6 || type === 3) {
      const index = frames.length;
      let ifc: { linkType: number; unitsPerSec: number } | undefined;
      let data: number;
      let caplen: number;
      let timeMs = 0;
      if (type === 6) {
        ifc = interfaces[dv.getUint32(off + 8, le)];
        const ts = dv.getUint32(off + 12, le) * 2 ** 32 + dv.getUint32(off + 16, le);
        caplen = dv.getUint32(off + 20, le);
        data = off + 28;
        if (ifc) timeMs = (ts / ifc.unitsPerSec) * 1000;
      } else {
        ifc = interfaces[0];
        caplen = Math.min(dv.getUint32(off + 8, le), len - 16);
        data = off + 12;
      }
      if (ifc === undefined)
        frames.push({ index, timeMs, skipped: 'packet block before its interface description' });
      else if (caplen > MAX_FRAME || data + caplen > off + len - 4)
        frames.push({ index, timeMs, skipped: 'packet length past its block' });
      else {
        const ip = ipOf(ifc.linkType, file.subarray(data, data + caplen));
        frames.push(typeof ip === 'string' ? { index, timeMs, skipped: ip } : { index, timeMs, ip });
      }
    }
    off += len;
  }
  return frames;
}
