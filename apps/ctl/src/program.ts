import { Command, InvalidArgumentError, Option } from 'commander';
import { type Output, runExplain } from './explain-command.js';

function milliseconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0)
    throw new InvalidArgumentError('must be a non-negative number of milliseconds');
  return n;
}

/**
 * buildProgram makes the onehostctl command line. `exit` receives each command's exit code (the
 * binary passes process.exit; tests capture it).
 */
export function buildProgram(io: Output, exit: (code: number) => void): Command {
  const program = new Command('onehostctl')
    .description('onehost operator CLI: ask the message switch how it routes packets')
    .version('0.1.0');
  program
    .command('explain')
    .description(
      'decide packets offline with a switch table from a YAML config and print, one JSON line per packet, ' +
        'the decision and the trace of Fig. 5 boxes that made it',
    )
    .requiredOption('-c, --config <file.yaml>', 'switch table config (see packages/switch/docs/config.md)')
    .addOption(
      new Option('-p, --packet <hex>', 'one IPv4 packet as hex (from the IP header on)').conflicts([
        'pcap',
        'flow',
      ]),
    )
    .addOption(
      new Option(
        '--pcap <file>',
        'every packet of a pcap/pcapng capture (Ethernet, raw IP or Linux cooked), in order',
      ).conflicts(['packet', 'flow']),
    )
    .addOption(
      new Option(
        '--flow <flow>',
        'a flow instead of bytes: "tcp|udp SRC:PORT DST:PORT [flags]", flags from syn,ack,fin,rst,psh,urg (tcp default syn)',
      ).conflicts(['packet', 'pcap']),
    )
    .option(
      '--now <ms>',
      'clock in milliseconds since the epoch (default: now, or each packet’s capture time)',
      milliseconds,
    )
    .option('--dry-run', 'leave the connection and flow tables untouched between packets', false)
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  onehostctl explain --config cluster.yaml --packet 4500003c...\n' +
        '  onehostctl explain --config cluster.yaml --pcap inbound.pcap\n' +
        "  onehostctl explain --config cluster.yaml --flow 'tcp 203.0.113.5:40000 203.0.113.10:443 ack'\n" +
        '\nExit status: 0 done; 1 no packet of the capture was IPv4; 2 bad usage, config or file.',
    )
    .action(
      (opts: {
        config: string;
        packet?: string;
        pcap?: string;
        flow?: string;
        now?: number;
        dryRun: boolean;
      }) => {
        exit(runExplain(opts, io));
      },
    );
  return program;
}
