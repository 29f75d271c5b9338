import type { IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_PAGE } from './page.js';
import { buildState, explainQuery, type StatusSources } from './state.js';

/** A page pushes itself this often while open. */
export const PUSH_EVERY_MS = 1000;
/** Open pages at once; more get 503 (each costs one state per second, shared by all). */
const MAX_STREAMS = 16;

/**
 * StatusRoutes serves the live status page on the gateway's management listener: `/status` (the page),
 * `/status/state` (one JSON state), `/status/stream` (server-sent events, a state per second, one
 * computation shared by every open page) and `/status/explain?…` (a dry-run explain of a flow).
 */
export class StatusRoutes {
  private readonly streams = new Set<ServerResponse>();
  private timer: NodeJS.Timeout | null = null;
  private busy = false;

  constructor(private readonly s: StatusSources) {}

  /** handle answers a status request; false when the path is not the page's. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'http://status');
    if (url.pathname !== '/status' && !url.pathname.startsWith('/status/')) return false;
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end('method not allowed\n');
      return true;
    }
    switch (url.pathname) {
      case '/status':
      case '/status/':
        res
          .writeHead(200, {
            'content-type': 'text/html; charset=utf-8',
            'cache-control': 'no-store',
            // everything the page runs is in the page itself
            'content-security-policy':
              "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
          })
          .end(STATUS_PAGE);
        return true;
      case '/status/state':
        void buildState(this.s).then(
          (st) => json(res, 200, st),
          (e: Error) => json(res, 500, { error: e.message }),
        );
        return true;
      case '/status/explain':
        void explainQuery(this.s, url.searchParams).then((a) =>
          a.ok ? json(res, 200, a.result) : json(res, 400, { error: a.error }),
        );
        return true;
      case '/status/stream':
        this.stream(req, res);
        return true;
      default:
        res.writeHead(404).end('not found\n');
        return true;
    }
  }

  /** close ends every open stream (the gateway is stopping). */
  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    for (const r of this.streams) r.end();
    this.streams.clear();
  }

  private stream(req: IncomingMessage, res: ServerResponse): void {
    if (this.streams.size >= MAX_STREAMS) {
      res.writeHead(503, { 'retry-after': '5' }).end('too many open status pages\n');
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
    });
    this.streams.add(res);
    req.on('close', () => {
      this.streams.delete(res);
      if (this.streams.size === 0 && this.timer !== null) {
        clearInterval(this.timer);
        this.timer = null;
      }
    });
    void this.push();
    if (this.timer === null) this.timer = setInterval(() => void this.push(), PUSH_EVERY_MS);
  }

  /** push sends one state to every open page; a push still running skips the next tick. */
  private async push(): Promise<void> {
    if (this.busy || this.streams.size === 0) return;
    this.busy = true;
    try {
      const data = `data: ${JSON.stringify(await buildState(this.s))}\n\n`;
      for (const r of this.streams) r.write(data);
    } catch {
      // the next tick tries again; the page shows how old its data is
    } finally {
      this.busy = false;
    }
  }
}

function json(res: ServerResponse, code: number, body: unknown): void {
  res
    .writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store' })
    .end(JSON.stringify(body));
}
