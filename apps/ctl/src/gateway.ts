import { readFile } from 'node:fs/promises';
import {
  type ClientTls,
  connectExports,
  connectGateway,
  connectMembership,
  connectSwitch,
  describeServiceError,
  type ExportsConnection,
  type GatewayConnection,
  isServiceError,
  type MembershipConnection,
  type SwitchConnection,
} from '@onehost/control/client';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { Output } from './explain-command.js';

/** GatewayFlags are the options every gRPC command shares. */
export interface GatewayFlags {
  gateway?: string;
  ca?: string;
  cert?: string;
  key?: string;
  serverName?: string;
  timeout: number;
  json: boolean;
}

/** UsageError is a bad flag or an unreadable file a flag names: exit 2, message starting with the flag. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Exit codes of the gRPC commands: 3 lets a script tell "not reached" from "refused". */
export const EXIT_CODE = { OK: 0, FAILED: 1, USAGE: 2, UNREACHABLE: 3 } as const;

// grpc-js words a failed connection as its own internals ("Waiting for LB pick", "Last error: …",
// an empty "Resolution note:"); operators need what failed.
const TLS_CAUSES: Array<[RegExp, string]> = [
  [
    /altnames|does not match certificate/i,
    "the gateway's certificate does not name the address dialled (try --server-name)",
  ],
  [
    /self[- ]signed|unable to (verify|get)|unknown ca|certificate verify failed/i,
    "the gateway's certificate is not signed by --ca",
  ],
  [/certificate has expired|certificate expired/i, 'a certificate has expired'],
  [
    /certificate required|bad certificate|certificate unknown/i,
    'the gateway refused the operator certificate (--cert)',
  ],
  [
    /wrong version number|packet length too long|http_request/i,
    'the address does not speak TLS (not the control listener?)',
  ],
];

/**
 * describeFailure turns a failed call into an exit code and a sentence: whether the gateway was
 * reached at all, and if TLS failed, why in words.
 */
export function describeFailure(
  err: { code: number; details: string },
  target: string,
  timeoutMs: number,
): { code: number; message: string } {
  const details = err.details.replace(/\s*Resolution note:\s*$/i, '').trim();
  const unreachable = `cannot reach the gateway at ${target}`;
  for (const [re, why] of TLS_CAUSES)
    if (re.test(details))
      return { code: EXIT_CODE.UNREACHABLE, message: `${unreachable}: TLS failed: ${why}` };
  if (err.code === 4 /* DEADLINE_EXCEEDED */ && /LB pick|connect|Waiting/i.test(details))
    return { code: EXIT_CODE.UNREACHABLE, message: `${unreachable}: no answer in ${seconds(timeoutMs)}` };
  // the gateway's own UNAVAILABLE answers (its store failed, it is stopping): it was reached, and its
  // words may quote another service's transport error (etcd's ECONNREFUSED) that is not about us
  const fromGateway = /^(store: |gateway shutting down)/.test(details);
  if (err.code === 14 /* UNAVAILABLE */ && !fromGateway) {
    const last = /Last error: (.*)$/.exec(details)?.[1] ?? details;
    const words = /ECONNREFUSED/.test(last)
      ? 'connection refused (no gateway listening there?)'
      : /EHOSTUNREACH|ENETUNREACH/.test(last)
        ? 'no route to it'
        : /ENOTFOUND|EAI_AGAIN|Name resolution/i.test(last)
          ? 'the name does not resolve'
          : last || 'unavailable';
    return { code: EXIT_CODE.UNREACHABLE, message: `${unreachable}: ${words}` };
  }
  return { code: EXIT_CODE.FAILED, message: `${target}: ${describeServiceError({ ...err, details })}` };
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

function hostPort(v: string): string {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s[\]]+):(\d{1,5})$/.exec(v);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535)
    throw new InvalidArgumentError('expected host:port, e.g. 198.18.0.1:7443');
  return v;
}

function milliseconds(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive whole number of ms');
  return n;
}

/**
 * addGatewayOptions adds --gateway, --ca, --cert, --key (each also from an ONEHOST_* environment
 * variable), --server-name, --timeout and --json. `required`: the first four must be given.
 */
export function addGatewayOptions(cmd: Command, required = true): Command {
  const mandatory = (o: Option) => (required ? o.makeOptionMandatory() : o);
  return cmd
    .addOption(
      mandatory(
        new Option('--gateway <host:port>', "the gateway's control plane")
          .env('ONEHOST_GATEWAY')
          .argParser(hostPort),
      ),
    )
    .addOption(mandatory(new Option('--ca <file>', 'cluster CA certificate (PEM)').env('ONEHOST_CA')))
    .addOption(mandatory(new Option('--cert <file>', 'operator certificate (PEM)').env('ONEHOST_CERT')))
    .addOption(
      mandatory(new Option('--key <file>', "the certificate's private key (PEM)").env('ONEHOST_KEY')),
    )
    .option('--server-name <name>', "a name in the gateway's certificate, when the --gateway host is not one")
    .option('--timeout <ms>', 'deadline of each call', milliseconds, 5000)
    .option('--json', 'machine output: one JSON document', false);
}

async function readPem(flag: string, file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `${flag}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  if (!text.includes('-----BEGIN ')) throw new UsageError(`${flag}: ${file} is not a PEM file`);
  return text;
}

/** Gateway opens typed connections to the control plane on first use and closes them all at the end. */
export class Gateway {
  private readonly open: Array<{ close(): void }> = [];

  constructor(
    readonly target: string,
    private readonly tls: ClientTls,
    private readonly deadlineMs: number,
  ) {}

  membership(): MembershipConnection {
    return this.keep(connectMembership(this.target, this.tls, { deadlineMs: this.deadlineMs }));
  }

  switch(): SwitchConnection {
    return this.keep(connectSwitch(this.target, this.tls, { deadlineMs: this.deadlineMs }));
  }

  exports(): ExportsConnection {
    return this.keep(connectExports(this.target, this.tls, { deadlineMs: this.deadlineMs }));
  }

  gateway(): GatewayConnection {
    return this.keep(connectGateway(this.target, this.tls, { deadlineMs: this.deadlineMs }));
  }

  private keep<T extends { close(): void }>(c: T): T {
    this.open.push(c);
    return c;
  }

  close(): void {
    for (const c of this.open) c.close();
  }
}

/**
 * withGateway reads the TLS files, runs `fn` against the gateway and turns failures into exit codes:
 * 2 (printed "onehostctl <command>: <flag>: …") for bad flags and files, 1 for a call the gateway
 * refused, 3 when the gateway could not be reached (see describeFailure). Never throws.
 */
export async function withGateway(
  command: string,
  flags: GatewayFlags,
  io: Output,
  fn: (gw: Gateway) => Promise<void>,
): Promise<number> {
  let gw: Gateway;
  try {
    const missing = (['gateway', 'ca', 'cert', 'key'] as const).filter((k) => flags[k] === undefined);
    if (missing.length > 0)
      throw new UsageError(`${missing.map((k) => `--${k}`).join(', ')} needed to reach the gateway`);
    const [caPem, certPem, keyPem] = [
      await readPem('--ca', flags.ca!),
      await readPem('--cert', flags.cert!),
      await readPem('--key', flags.key!),
    ];
    const tls: ClientTls = {
      caPem,
      certPem,
      keyPem,
      ...(flags.serverName !== undefined ? { serverName: flags.serverName } : {}),
    };
    gw = new Gateway(flags.gateway!, tls, flags.timeout);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err(`onehostctl ${command}: ${err.message}`);
    return EXIT_CODE.USAGE;
  }
  try {
    await fn(gw);
    return EXIT_CODE.OK;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`onehostctl ${command}: ${err.message}`);
      return EXIT_CODE.USAGE;
    }
    if (!isServiceError(err)) throw err;
    const failure = describeFailure(err, flags.gateway!, flags.timeout);
    io.err(`onehostctl ${command}: ${failure.message}`);
    return failure.code;
  } finally {
    gw.close();
  }
}

/** printJson writes one JSON document. */
export function printJson(io: Output, value: unknown): void {
  io.out(JSON.stringify(value, null, 2));
}
