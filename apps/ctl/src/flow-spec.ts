import type { FlowQuestion } from '@onehost/switch';
import { TCP_FLAGS, tryParseIpv4 } from '@onehost/wire';

const FLAG_BITS: Record<string, number> = {
  syn: TCP_FLAGS.SYN,
  ack: TCP_FLAGS.ACK,
  fin: TCP_FLAGS.FIN,
  rst: TCP_FLAGS.RST,
  psh: TCP_FLAGS.PSH,
  urg: TCP_FLAGS.URG,
};

function endpoint(text: string, what: string): [number, number] {
  const i = text.lastIndexOf(':');
  const addr = i < 0 ? -1 : tryParseIpv4(text.slice(0, i));
  const port = i < 0 ? Number.NaN : Number(text.slice(i + 1));
  if (addr < 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${what} must be address:port like 203.0.113.5:40000, got ${JSON.stringify(text)}`);
  }
  return [addr, port];
}

/**
 * parseFlow reads `tcp|udp <src>:<port> <dst>:<port> [flags]`, flags comma-separated from syn, ack,
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
