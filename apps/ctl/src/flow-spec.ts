import type { FlowQuestion } from '@onehost/switch';
import { parseIpv6, TCP_FLAGS, tryParseIpv4 } from '@onehost/wire';

const FLAG_BITS: Record<string, number> = {
  syn: TCP_FLAGS.SYN,
  ack: TCP_FLAGS.ACK,
  fin: TCP_FLAGS.FIN,
  rst: TCP_FLAGS.RST,
  psh: TCP_FLAGS.PSH,
  urg: TCP_FLAGS.URG,
};

/** endpoint reads `address:port` (IPv4) or `[address]:port` (IPv6, RFC 3986 §3.2.2's brackets). */
function endpoint(text: string, what: string): [string, number] {
  const m = /^\[([0-9A-Fa-f:.]+)\]:(\d+)$/.exec(text) ?? /^([0-9.]+):(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : Number.NaN;
  let ok = m !== null && Number.isInteger(port) && port <= 65535;
  if (ok && m![1]!.includes(':')) {
    try {
      parseIpv6(m![1]!);
    } catch {
      ok = false;
    }
  } else if (ok) ok = tryParseIpv4(m![1]!) >= 0;
  if (!ok)
    throw new Error(
      `${what} must be address:port like 203.0.113.5:40000 or [2001:db8::5]:40000, got ${JSON.stringify(text)}`,
    );
  return [m![1]!, port];
}

/**
 * parseFlow reads `tcp|udp <src>:<port> <dst>:<port> [flags]` (IPv6 addresses in brackets), flags comma-separated from syn, ack,
 * fin, rst, psh, urg (TCP only; default syn). Throws Error naming the part that is wrong.
 */
export function parseFlow(text: string): FlowQuestion {
  const parts = text.trim().split(/\s+/);
  if (parts.length < 3 || parts.length > 4)
    throw new Error(`expected "tcp|udp SRC:PORT DST:PORT [flags]", got ${JSON.stringify(text)}`);
  const protocol = parts[0]!.toLowerCase();
  if (protocol !== 'tcp' && protocol !== 'udp')
    throw new Error(`protocol must be tcp or udp, got ${JSON.stringify(parts[0])}`);
  const [src, srcPort] = endpoint(parts[1]!, 'source');
  const [dst, dstPort] = endpoint(parts[2]!, 'destination');
  if (src.includes(':') !== dst.includes(':'))
    throw new Error('source and destination must be of one address family');
  let tcpFlags: number | undefined;
  if (parts[3] !== undefined) {
    if (protocol !== 'tcp') throw new Error('flags are for tcp flows only');
    tcpFlags = 0;
    for (const f of parts[3].toLowerCase().split(',')) {
      const bit = FLAG_BITS[f];
      if (bit === undefined)
        throw new Error(`unknown TCP flag ${JSON.stringify(f)} (use ${Object.keys(FLAG_BITS).join(', ')})`);
      tcpFlags |= bit;
    }
  }
  return { protocol, src, dst, srcPort, dstPort, ...(tcpFlags !== undefined ? { tcpFlags } : {}) };
}
