import { readFileSync } from 'node:fs';
import { formatIssue, MessageSwitch, parseConfigText } from '@onehost/switch';
import { parseFlow } from './flow-spec.js';
import { parseHex } from './hex.js';
import { CaptureError, readCapture } from './pcap.js';

export interface ExplainOptions {
  config: string;
  packet?: string;
  pcap?: string;
  flow?: string;
  now?: number;
  dryRun?: boolean;
}

/** Where the command writes: one JSON line per packet to `out`, problems to `err`. */
export interface Output {
  out(line: string): void;
  err(line: string): void;
}

/** Exit codes: 0 done, 1 a packet could not be read, 2 bad usage, config or input file. */
export const EXIT = { OK: 0, PACKET: 1, USAGE: 2 } as const;

/**
 * runExplain loads the config, then explains the packet(s) offline with a fresh switch, printing one
 * JSON line each: {packet, time?, decision, trace, summary?}. Packets of a capture share the switch's
 * tables (a SYN then its ACK) and use the capture's timestamps as the clock. Returns the exit code;
 * never throws for bad input.
 */
export function runExplain(opts: ExplainOptions, io: Output): number {
  const inputs = [opts.packet, opts.pcap, opts.flow].filter((x) => x !== undefined).length;
  if (inputs !== 1) {
    io.err('onehostctl explain: give exactly one of --packet <hex>, --pcap <file> or --flow <flow>');
    return EXIT.USAGE;
  }
  let text: string;
  try {
    text = readFileSync(opts.config, 'utf8');
  } catch (e) {
    io.err(`onehostctl explain: cannot read config ${opts.config}: ${(e as Error).message}`);
    return EXIT.USAGE;
  }
  const parsed = parseConfigText(text);
  if (!parsed.ok) {
    for (const i of parsed.issues) io.err(formatIssue(i, opts.config));
    io.err(`onehostctl explain: ${parsed.issues.length} problem(s) in ${opts.config}`);
    return EXIT.USAGE;
  }
  const sw = new MessageSwitch();
  sw.load(parsed.config);
  const dryRun = opts.dryRun ?? false;
  // one packet or flow: the same line as a capture's first packet
  const explainLine = (e: ReturnType<MessageSwitch['explain']>) =>
    JSON.stringify({
      packet: 0,
      decision: e.decision,
      trace: e.trace,
      ...(e.packet ? { summary: e.packet } : {}),
    });

  if (opts.flow !== undefined) {
    let q: ReturnType<typeof parseFlow>;
    try {
      q = parseFlow(opts.flow);
    } catch (e) {
      io.err(`onehostctl explain: --flow: ${(e as Error).message}`);
      return EXIT.USAGE;
    }
    const e = sw.explainFlow(q, { now: opts.now ?? Date.now(), dryRun });
    io.out(explainLine(e));
    return EXIT.OK;
  }

  if (opts.packet !== undefined) {
    let bytes: Uint8Array;
    try {
      bytes = parseHex(opts.packet);
    } catch (e) {
      io.err(`onehostctl explain: --packet: ${(e as Error).message}`);
      return EXIT.USAGE;
    }
    const e = sw.explain(bytes, { now: opts.now ?? Date.now(), dryRun });
    io.out(explainLine(e));
    return EXIT.OK;
  }

  let file: Uint8Array;
  try {
    file = readFileSync(opts.pcap!);
  } catch (e) {
    io.err(`onehostctl explain: cannot read capture ${opts.pcap}: ${(e as Error).message}`);
    return EXIT.USAGE;
  }
  let frames: ReturnType<typeof readCapture>;
  try {
    frames = readCapture(file);
  } catch (e) {
    if (!(e instanceof CaptureError)) throw e;
    io.err(`onehostctl explain: ${opts.pcap}: ${e.message}`);
    return EXIT.USAGE;
  }
  let skipped = 0;
  for (const f of frames) {
    const time = new Date(f.timeMs).toISOString();
    if ('skipped' in f) {
      skipped++;
      io.out(JSON.stringify({ packet: f.index, time, skipped: f.skipped }));
      continue;
    }
    const e = sw.explain(f.ip, { now: opts.now ?? f.timeMs, dryRun });
    io.out(
      JSON.stringify({
        packet: f.index,
        time,
        decision: e.decision,
        trace: e.trace,
        ...(e.packet ? { summary: e.packet } : {}),
      }),
    );
  }
  return skipped > 0 && skipped === frames.length ? EXIT.PACKET : EXIT.OK;
}
