import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Lab } from '@onehost/lab';
import type { LabProcess } from '@onehost/testkit';
import { readCapture } from '../../apps/ctl/src/pcap.js';

/** Capture is a running tcpdump in a lab host; `packets()` stops it and returns the IPv4 packets seen. */
export class Capture {
  constructor(
    private readonly proc: LabProcess,
    private readonly file: string,
  ) {}

  /** packets stops tcpdump (SIGTERM flushes the file) and returns every IPv4 packet it captured. */
  async packets(): Promise<Uint8Array[]> {
    await this.proc.stop(3000);
    const frames = readCapture(await readFile(this.file));
    await rm(this.file, { force: true });
    return frames.flatMap((f) => ('ip' in f && f.ip[0]! >> 4 === 4 ? [f.ip] : []));
  }
}

/**
 * capture starts tcpdump on `iface` of `host` with a BPF filter and waits until it listens. `snaplen`
 * bytes of each frame are kept (default 0: all of it); a short one keeps a bulk transfer's capture small,
 * but its packets are then cut short (read their headers, not their payload).
 */
export async function capture(
  lab: Lab,
  host: string,
  iface: string,
  filter: string,
  name: string,
  snaplen = 0,
): Promise<Capture> {
  const file = join(lab.runDir, `${name}.pcap`);
  const proc = lab.spawn(host, 'tcpdump', [
    '-Z',
    'root',
    '-i',
    iface,
    '-n',
    '-U',
    '--immediate-mode',
    '-s',
    String(snaplen),
    '-w',
    file,
    filter,
  ]);
  await proc.waitForOutput('listening on', 5000);
  return new Capture(proc, file);
}
