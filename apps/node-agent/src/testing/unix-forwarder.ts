import { connect, createServer, type Server, type Socket } from 'node:net';

/** UnixForwarder passes connections on a Unix socket to a TCP port on 127.0.0.1 (the other end of relay.mjs). */
export interface UnixForwarder {
  /** where new connections go; changing it leaves open ones alone. */
  port: number;
  /** close stops listening and cuts every open connection. */
  close(): Promise<void>;
}

/** forwardUnixToTcp listens on `path` and forwards to 127.0.0.1:`port`. Throws when it cannot listen. */
export async function forwardUnixToTcp(path: string, port: number): Promise<UnixForwarder> {
  const open = new Set<Socket>();
  const fwd: UnixForwarder = {
    port,
    close: () => {
      for (const s of open) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((down) => {
    const up = connect(fwd.port, '127.0.0.1');
    const close = () => {
      down.destroy();
      up.destroy();
      open.delete(down);
      open.delete(up);
    };
    open.add(down).add(up);
    down.pipe(up);
    up.pipe(down);
    for (const s of [down, up]) {
      s.on('error', close);
      s.on('close', close);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  return fwd;
}
