#!/usr/bin/env node
// splice-agent.mjs: what the daemon will do for delayed binding, without the Splicer, driven by a test
// over stdin/stdout (one JSON object a line). Test-only. Runs in a node's network namespace:
//   node splice-agent.mjs CONFIG_FILE      applies the NodeConfig, opens SpliceIo, prints {"ev":"ready"}
//   node splice-agent.mjs send FROM TO PORT HEX  sends one UDP datagram from FROM (a local address)
// Commands {"id", "op", ...} are answered with {"id", ...} or {"id", "error"}; SpliceIo's callbacks
// and the test listener print events {"ev", ...}. stdin closing ends the process without restoring.
import { createSocket } from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';

const print = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const [first, ...rest] = process.argv.slice(2);

if (first === 'send') {
  const [from, to, port, hex] = rest;
  const s = createSocket('udp4');
  s.bind(0, from, () => s.send(Buffer.from(hex, 'hex'), Number(port), to, () => s.close()));
} else {
  // Loaded here only: `send` needs none of it.
  const { PacketSender } = await import('@onehost/tun');
  const { default: pino } = await import('pino');
  const { applyNodeConfig, restore, SpliceIo, updateNftables, withSpliceCapture } = await import(
    '../../../dist/index.js'
  );
  let config = JSON.parse(await readFile(first, 'utf8'));
  const logger = pino({ level: 'warn' }, pino.destination(2));
  const applied = await applyNodeConfig(config);
  const options = {
    stateFile: applied.stateFile,
    listenAddress: config.internal.address,
    gateways: config.gateways,
    logger,
  };
  const handlers = {
    onMessage: (payload, from) => print({ ev: 'message', from, hex: payload.toString('hex') }),
    onOutbound: (count, arena, meta) => {
      const packets = [];
      const offload = [];
      for (let i = 0; i < count; i++) {
        packets.push(arena.subarray(meta[4 * i], meta[4 * i] + meta[4 * i + 1]).toString('hex'));
        offload.push({ flags: meta[4 * i + 2], gso: meta[4 * i + 3] });
      }
      print({ ev: 'outbound', packets, offload });
    },
    onError: (err) => print({ ev: 'error', message: err.message }),
  };
  const io = await SpliceIo.open(options, handlers);
  // The control case: the same packets without the bypass mark.
  const unmarked = PacketSender.open();
  const one = new Int32Array(4);
  /** Connections the listener accepted, by "address:port" of the peer. */
  const accepted = new Map();

  const ops = {
    inject: ({ hex }) => ({ ok: io.inject(Buffer.from(hex, 'hex')) }),
    sendOut: ({ hex }) => ({ ok: io.sendOut(Buffer.from(hex, 'hex')) }),
    sendUnmarked: ({ hex }) => {
      const p = Buffer.from(hex, 'hex');
      one[1] = p.length;
      return { ok: unmarked.sendIp(p, one, 0, 1) === 1 };
    },
    stats: () => ({ stats: io.stats() }),
    write: ({ remote, size }) => {
      const sock = accepted.get(remote);
      if (sock === undefined) throw new Error(`no connection from ${remote}`);
      sock.write(Buffer.alloc(size, 0x61));
      return { ok: true };
    },
    listen: ({ address, port }) =>
      new Promise((resolve, reject) => {
        const server = createServer((sock) => {
          const remote = `${sock.remoteAddress}:${sock.remotePort}`;
          accepted.set(remote, sock);
          print({ ev: 'accepted', remote });
          sock.on('data', (d) => print({ ev: 'data', hex: d.toString('hex') }));
          sock.on('error', () => undefined);
        });
        server.once('error', reject);
        server.listen(port, address, () => resolve({ ok: true }));
      }),
    capture: async ({ ports }) => {
      config = withSpliceCapture(config, ports);
      await updateNftables(config);
      return { ok: true };
    },
    open: ({ overrides = {} }) =>
      SpliceIo.open({ ...options, ...overrides }, handlers).then(
        async (other) => {
          await other.close();
          return { ok: true };
        },
        (err) => ({ ok: false, message: err.message }),
      ),
    close: async () => {
      await io.close();
      unmarked.close();
      return { ok: true };
    },
    restore: async () => ({ report: await restore(applied.stateFile) }),
  };

  const lines = createInterface({ input: process.stdin });
  lines.on('line', async (line) => {
    const { id, op, ...args } = JSON.parse(line);
    try {
      const fn = ops[op];
      if (fn === undefined) throw new Error(`unknown op ${op}`);
      print({ id, ...(await fn(args)) });
    } catch (err) {
      print({ id, error: err instanceof Error ? err.message : String(err) });
    }
  });
  lines.on('close', () => process.exit(0));
  print({ ev: 'ready', tun: io.tunName, port: io.port, stateFile: applied.stateFile });
}
