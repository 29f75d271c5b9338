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
