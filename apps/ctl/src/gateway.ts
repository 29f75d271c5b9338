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
} from '@onehost/control';
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

/** Exit codes of the gRPC commands. */
export const EXIT_CODE = { OK: 0, FAILED: 1, USAGE: 2 } as const;

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
 * refused or could not answer ("onehostctl <command>: UNAVAILABLE: …"). Never throws.
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
    io.err(`onehostctl ${command}: ${flags.gateway}: ${describeServiceError(err)}`);
    return EXIT_CODE.FAILED;
  } finally {
    gw.close();
  }
}

/** printJson writes one JSON document. */
export function printJson(io: Output, value: unknown): void {
  io.out(JSON.stringify(value, null, 2));
}
