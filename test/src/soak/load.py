#!/usr/bin/env python3
"""load.py: the soak's own HTTP client and outside server (soak.ts). Standard library only.

  load.py close HOST PORT SECONDS RATE
      one new connection per request (GET /, Connection: close, 2 s timeout), at most RATE requests a
      second, for SECONDS; once a second prints {"ok": n, "failed": [[start_ms, end_ms, why], ...]} so
      every failure carries the interval it was in flight (epoch ms), to be matched to churn windows.
  load.py serve PORT DIR
      an HTTP server for the nodes' outbound connections: /whoami answers "addr:port" of the peer it saw
      (the stamping check), any other path a file from DIR.
"""
import http.client
import http.server
import json
import os
import socketserver
import sys
import time


def now_ms() -> int:
    return int(time.time() * 1000)


def close_loop(host: str, port: int, seconds: float, rate: float) -> None:
    end = time.monotonic() + seconds
    gap = 1.0 / rate
    ok, failed, last = 0, [], time.monotonic()
    nxt = time.monotonic()
    while time.monotonic() < end:
        t0 = now_ms()
        try:
            c = http.client.HTTPConnection(host, port, timeout=2)
            c.request("GET", "/", headers={"Connection": "close"})
            r = c.getresponse()
            body = r.read()
            c.close()
            if r.status != 200 or not body.strip().startswith(b"n"):
                failed.append([t0, now_ms(), f"status {r.status} {body[:40]!r}"])
            else:
                ok += 1
        except Exception as e:  # every kind of failure is a failed request, with its reason
            failed.append([t0, now_ms(), f"{type(e).__name__}: {e}"[:120]])
        m = time.monotonic()
        if m - last >= 1.0:
            print(json.dumps({"ok": ok, "failed": failed}), flush=True)
            ok, failed, last = 0, [], m
        nxt = max(nxt + gap, m)
        if nxt > m:
            time.sleep(nxt - m)
    print(json.dumps({"ok": ok, "failed": failed, "done": True}), flush=True)


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the stdlib's name)
        if self.path == "/whoami":
            body = ("%s:%d" % self.client_address).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, *args):  # quiet: the soak counts, not the server
        pass


def serve(port: int, directory: str) -> None:
    os.chdir(directory)
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    srv = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    print("listening", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "close":
        close_loop(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
    elif sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3])
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]}")
