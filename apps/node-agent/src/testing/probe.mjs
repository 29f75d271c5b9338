#!/usr/bin/env node
// probe.mjs: a tiny TCP+UDP server that answers with the address and port it saw the peer come from,
// and a client that prints the answer together with its own socket's view. Test-only.
//   node probe.mjs serve PORT [BIND]                 prints "listening"
//   node probe.mjs ask tcp|udp HOST PORT [BIND]      prints {"seen","local","from"} (each "addr:port": what the
//                                                    server saw, this socket, where the answer came from)
import { createSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';

const [mode, ...rest] = process.argv.slice(2);
const TIMEOUT_MS = 3000;

if (mode === 'serve') {
  const [port, bind = '0.0.0.0'] = rest;
  let ready = 0;
  const up = () => {
    if (++ready === 2) console.log('listening');
  };
  createServer((sock) => {
    sock.end(`${sock.remoteAddress}:${sock.remotePort}\n`);
    sock.on('error', () => undefined);
  }).listen(Number(port), bind, up);
  const udp = createSocket('udp4');
  udp.on('message', (_msg, from) => udp.send(`${from.address}:${from.port}\n`, from.port, from.address));
  udp.bind(Number(port), bind, up);
} else if (mode === 'ask') {
  const [proto, host, port, bind] = rest;
  const timer = setTimeout(() => {
    console.error(`probe: no answer from ${host}:${port}/${proto} within ${TIMEOUT_MS} ms`);
    process.exit(1);
  }, TIMEOUT_MS);
  const done = (seen, local, from) => {
    clearTimeout(timer);
    console.log(JSON.stringify({ seen: seen.trim(), local, from }));
    process.exit(0);
  };
  if (proto === 'tcp') {
    const sock = connect({ host, port: Number(port), localAddress: bind });
    let data = '';
    let local = '';
    let from = '';
    sock.on('connect', () => {
      local = `${sock.localAddress}:${sock.localPort}`;
      from = `${sock.remoteAddress}:${sock.remotePort}`;
    });
    sock.on('data', (b) => {
      data += b;
    });
    sock.on('end', () => done(data, local, from));
    sock.on('error', (err) => {
      console.error(`probe: ${err.message}`);
      process.exit(1);
    });
  } else {
    const udp = createSocket('udp4');
    udp.on('message', (msg, rinfo) => {
      const a = udp.address();
      done(msg.toString(), `${a.address}:${a.port}`, `${rinfo.address}:${rinfo.port}`);
    });
    udp.bind(0, bind, () => {
      const send = () => udp.send('hi', Number(port), host);
      send();
      // UDP may lose the first datagram while neighbours resolve: resend, bounded by the timeout.
      setInterval(send, 500).unref();
    });
  }
} else {
  console.error('usage: probe.mjs serve PORT [BIND] | ask tcp|udp HOST PORT [BIND]');
  process.exit(2);
}
