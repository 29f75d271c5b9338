#!/usr/bin/env python3
"""keepalive-client.py: long-lived HTTP/1.1 connections to one address, for the tests of connections
that move between gateways (ecmp-gateways.e2e.test.ts). Standard library only (http.client).

argv: host. Commands on stdin, one per line, each answered with one JSON line on stdout:
  open N PORT  opens N more connections to PORT (each its own source port) and asks GET / on each;
               answers {"opened": N, "failed": F}
  check        asks GET / again on every open connection; answers per port {"PORT": {"same": S,
               "changed": C, "failed": F, "errors": [first few]}}: "same" when the answer names the node
               that answered at the open
  quit     closes everything and exits
A connection that fails is closed and not asked again. Every request times out after 3 s.
"""
import http.client
import json
import sys

host = sys.argv[1]
conns = []  # [connection, port, node that answered first]


def ask(c):
    c.request("GET", "/", headers={"Connection": "keep-alive"})
    r = c.getresponse()
    body = r.read().decode().strip()
    if r.status != 200:
        raise RuntimeError(f"status {r.status}")
    return body


def say(o):
    sys.stdout.write(json.dumps(o) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    words = line.split()
    if not words:
        continue
    if words[0] == "open":
        failed = 0
        port = int(words[2])
        for _ in range(int(words[1])):
            c = http.client.HTTPConnection(host, port, timeout=3)
            try:
                conns.append([c, port, ask(c)])
            except Exception:
                failed += 1
                c.close()
        say({"opened": int(words[1]) - failed, "failed": failed})
    elif words[0] == "check":
        out = {}
        alive = []
        for c, port, node in conns:
            r = out.setdefault(str(port), {"same": 0, "changed": 0, "failed": 0, "errors": []})
            try:
                got = ask(c)
                r["same" if got == node else "changed"] += 1
                alive.append([c, port, node])
            except Exception as e:
                r["failed"] += 1
                if len(r["errors"]) < 3:
                    r["errors"].append(f"{node}: {type(e).__name__}: {e}")
                c.close()
        conns = alive
        say(out)
    elif words[0] == "quit":
        break
for c, _, _ in conns:
    c.close()
