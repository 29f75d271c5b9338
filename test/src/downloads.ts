import type { Lab } from '@onehost/lab';

/** A download under way: what it is, and what curl fetched when it ends. */
export interface Download {
  what: string;
  done: Promise<{ ok: boolean; bytes: number; detail: string }>;
}

/**
 * download runs curl in `host` at `rate` bytes per second (curl's --limit-rate), bounded to 40 s, and
 * resolves with the bytes it fetched, or the first line of its error: long transfers for the tests of
 * flows that outlive a gateway's death.
 */
export function download(lab: Lab, what: string, host: string, url: string, rate: string): Download {
  const done = lab
    .exec(
      host,
      'curl',
      [
        '-sS',
        '--fail',
        '--limit-rate',
        rate,
        '--max-time',
        '40',
        '-o',
        '/dev/null',
        '-w',
        '%{size_download}',
        url,
      ],
      { timeoutMs: 50_000 },
    )
    .then(
      (r) => ({ ok: true, bytes: Number(r.stdout), detail: '' }),
      (e: Error) => ({ ok: false, bytes: 0, detail: e.message.split('\n')[0] ?? '' }),
    );
  return { what, done };
}

/** Reads stdin at most argv[1] bytes per second; prints the byte count and the sha256 of what it read. */
const PACED_READER = `
import hashlib, sys, time
rate, h, n, t0 = int(sys.argv[1]), hashlib.sha256(), 0, time.monotonic()
while True:
    b = sys.stdin.buffer.read(65536)
    if not b: break
    h.update(b); n += len(b)
    time.sleep(max(0.0, t0 + n / rate - time.monotonic()))
print(n, h.hexdigest())
`;

/**
 * nfsStream reads an NFS file with libnfs's nfs-cat in c1 (NFSv3 over TCP), paced to 4 MB/s by a slow
 * reader of its output, bounded to 40 s; ok when nfs-cat succeeded and the bytes' sha256 is `sha`.
 */
export function nfsStream(lab: Lab, what: string, url: string, sha: string): Download {
  const script = `set -o pipefail; nfs-cat '${url}' | python3 -c "$1" 4000000`;
  const done = lab
    .exec('c1', 'timeout', ['40', 'bash', '-c', script, 'paced', PACED_READER], { timeoutMs: 50_000 })
    .then(
      (r) => {
        const [bytes, got] = r.stdout.trim().split(' ');
        return got === sha
          ? { ok: true, bytes: Number(bytes), detail: '' }
          : { ok: false, bytes: Number(bytes), detail: `sha256 ${got}, not the file's` };
      },
      (e: Error) => ({ ok: false, bytes: 0, detail: e.message.split('\n')[0] ?? '' }),
    );
  return { what, done };
}
