import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';
import { run, waitFor } from '@onehost/testkit';
import { describe, expect, it } from 'vitest';
import { isTunError, setReceiveBuffer, TCPI_OPT, tcpRepairDetach } from './index.js';

const fdOf = (s: Socket): number => (s as unknown as { _handle: { fd: number } })._handle.fd;

/** states lists `ss` states of TCP sockets on loopback port `port` (local or remote). */
async function states(port: number): Promise<string[]> {
  const { stdout } = await run('ss', ['-Htan', `( sport = :${port} or dport = :${port} )`]);
  return stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(/\s+/)[0]!);
}

describe('tcpRepairDetach', () => {
  it('reads the sequence numbers and options, and a close afterwards sends the peer nothing', async () => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const accepted = once(server, 'connection');
    const client = createConnection(port, '127.0.0.1');
    await once(client, 'connect');
    const [conn] = (await accepted) as [Socket];
    try {
      client.write('hello');
      const [got] = (await once(conn, 'data')) as [Buffer];
      expect(got.toString()).toBe('hello');
      conn.write('yo');
      await once(client, 'data');
      // stop libuv reading (pause() alone lets Node read ahead into the stream's buffer)
      (conn as unknown as { _handle: { readStop(): void } })._handle.readStop();
      client.write('unread');
      // the server's Recv-Q (ss column 2) holds the 6 bytes the application did not read
      await waitFor(
        async () => {
          const { stdout } = await run('ss', ['-Htn', `( sport = :${port} )`]);
          return stdout.split(/\s+/)[1] === '6';
        },
        { what: 'unread bytes queued' },
      );
      const info = await waitFor(
        () => {
          const r = tcpRepairDetach(fdOf(conn));
          return r.sndNxt === undefined ? null : r;
        },
        { what: 'the reply acknowledged', timeoutMs: 5000 },
      );
      expect(info.state).toBe(1);
      expect(info.options & TCPI_OPT.SACK).toBeTruthy();
      expect(info.sndMss).toBeGreaterThan(0);
      expect(typeof info.rcvNxt).toBe('number');
      expect(info.recvQueued).toBe(6);
      expect(info.recvData?.toString()).toBe('unread');
      conn.destroy();
      // the server's socket is gone, and the client never saw a FIN (it would be in CLOSE-WAIT) or a RST
      await waitFor(async () => (await states(port)).length === 2, { what: 'the server socket gone' });
      expect(await states(port)).toEqual(['LISTEN', 'ESTAB']);
      expect(client.destroyed).toBe(false);
    } finally {
      client.destroy();
      server.close();
    }
  });

  it('refuses a descriptor that is not a TCP socket with a TunError', () => {
    let err: unknown;
    try {
      tcpRepairDetach(0);
    } catch (e) {
      err = e;
    }
    expect(isTunError(err, 'TUN_CONFIG')).toBe(true);
  });
});

describe('setReceiveBuffer', () => {
  it('sets SO_RCVBUF (the kernel doubles it), which bounds what an unread socket takes in', async () => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const accepted = once(server, 'connection');
    const client = createConnection(port, '127.0.0.1');
    await once(client, 'connect');
    const [conn] = (await accepted) as [Socket];
    try {
      expect(setReceiveBuffer(fdOf(conn), 16 * 1024)).toBe(32 * 1024);
      (conn as unknown as { _handle: { readStop(): void } })._handle.readStop();
      client.write(Buffer.alloc(1 << 20));
      // the server's Recv-Q stops well short of the megabyte (the window is not opened further)
      const queued = async () => {
        const { stdout } = await run('ss', ['-Htn', 'state', 'established', `( sport = :${port} )`]);
        return Number(stdout.trim().split(/\s+/)[0] ?? 0);
      };
      await waitFor(async () => (await queued()) > 0, { what: 'bytes queued', timeoutMs: 2000 });
      expect(await queued()).toBeLessThanOrEqual(64 * 1024);
    } finally {
      client.destroy();
      conn.destroy();
      server.close();
    }
    expect(() => setReceiveBuffer(-1, 1024)).toThrow();
  });
});
