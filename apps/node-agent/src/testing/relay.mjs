#!/usr/bin/env node
// relay.mjs: listen on TCP HOST:PORT and pass each connection, byte for byte, to a Unix socket. Unix
// sockets live in the file system, not in a network namespace, so this carries the agent's gRPC from a
// test namespace to a control server in the test process. Test-only.
//   node relay.mjs HOST PORT UNIX_PATH      prints "listening"
import { connect, createServer } from 'node:net';

const [host, port, path] = process.argv.slice(2);
createServer((down) => {
  const up = connect(path);
  const close = () => {
    down.destroy();
    up.destroy();
  };
  down.pipe(up);
  up.pipe(down);
  for (const s of [down, up]) {
    s.on('error', close);
    s.on('close', close);
  }
}).listen(Number(port), host, () => console.log('listening'));
