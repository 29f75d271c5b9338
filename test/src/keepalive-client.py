#!/usr/bin/env python3
"""keepalive-client.py: long-lived HTTP/1.1 connections to one address, for the tests of connections
that move between gateways (ecmp-gateways.e2e.test.ts). Standard library only (http.client).

argv: host port. Commands on stdin, one per line, each answered with one JSON line on stdout:
  open N   opens N more connections (each its own source port) and asks GET / on each;
           answers {"opened": N, "failed": F}
  check    asks GET / again on every open connection; answers {"same": S, "changed": C, "failed": F,
           "errors": [first few]}: "same" when the answer names the node that answered at the open
  quit     closes everything and exits
A connection that fails is closed and not asked again. Every request times out after 3 s.
"""
import http.client
import json
import sys

host, port = sys.argv[1], int(sys.argv[2])
conns = []  # [connection, node that answered first]


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
        for _ in range(int(words[1])):
            c = http.client.HTTPConnection(host, port, timeout=3)
            try:
                conns.append([c, ask(c)])
            except Exception:
                failed += 1
                c.close()
        say({"opened": int(words[1]) - failed, "failed": failed})
    elif words[0] == "check":
        same = changed = failed = 0
        errors = []
        alive = []
        for c, node in conns:
            try:
                got = ask(c)
                if got == node:
                    same += 1
                else:
                    changed += 1
                alive.append([c, node])
            except Exception as e:
                failed += 1
                if len(errors) < 5:
                    errors.append(f"{node}: {type(e).__name__}: {e}")
                c.close()
        conns = alive
        say({"same": same, "changed": changed, "failed": failed, "errors": errors})
    elif words[0] == "quit":
        break
for c, _ in conns:
    c.close()
