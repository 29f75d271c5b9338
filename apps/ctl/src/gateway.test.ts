import { describe, expect, it } from 'vitest';
import { describeFailure, EXIT_CODE } from './gateway.js';

const at = '198.18.0.1:7443';

describe('describeFailure', () => {
  it('says an unanswered gateway in words, exit 3', () => {
    const f = describeFailure(
      { code: 4, details: 'Deadline exceeded after 2.001s,LB pick: 2.000s (Waiting for LB pick)' },
      at,
      2000,
    );
    expect(f).toEqual({
      code: EXIT_CODE.UNREACHABLE,
      message: `cannot reach the gateway at ${at}: no answer in 2 s`,
    });
  });

  it('says a refused connection, exit 3', () => {
    const f = describeFailure(
      {
        code: 14,
        details:
          'No connection established. Last error: connect ECONNREFUSED 198.18.0.1:7443. Resolution note: ',
      },
      at,
      5000,
    );
    expect(f.code).toBe(3);
    expect(f.message).toBe(
      `cannot reach the gateway at ${at}: connection refused (no gateway listening there?)`,
    );
  });

  it('names a certificate failure in words and drops an empty resolution note', () => {
    const f = describeFailure(
      {
        code: 14,
        details:
          "No connection established. Last error: Hostname/IP does not match certificate's altnames: IP: 127.0.0.1 is not in the cert's list: . Resolution note: ",
      },
      at,
      5000,
    );
    expect(f.code).toBe(3);
    expect(f.message).toContain("TLS failed: the gateway's certificate does not name the address dialled");
    expect(f.message).not.toContain('Resolution note');
    const ca = describeFailure(
      { code: 14, details: 'Last error: self-signed certificate in certificate chain' },
      at,
      1,
    );
    expect(ca.message).toBe(
      `cannot reach the gateway at ${at}: TLS failed: the gateway's certificate is not signed by --ca`,
    );
  });

  it('keeps the gateway’s own UNAVAILABLE (its store failed) as its answer, exit 1', () => {
    const details =
      'store: etcd store https://127.0.0.1:2379 (prefix /onehost/): writing member n1: etcd unreachable (14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:2379. Resolution note: )';
    expect(describeFailure({ code: 14, details }, at, 5000)).toEqual({
      code: EXIT_CODE.FAILED,
      message: `${at}: UNAVAILABLE: ${details}`,
    });
  });

  it('keeps a refusal by the gateway as exit 1 with its status', () => {
    const f = describeFailure({ code: 5, details: 'no node n9' }, at, 5000);
    expect(f).toEqual({ code: EXIT_CODE.FAILED, message: `${at}: NOT_FOUND: no node n9` });
  });
});
