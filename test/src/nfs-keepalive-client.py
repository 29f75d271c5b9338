#!/usr/bin/env python3
"""nfs-keepalive-client.py: long-lived NFSv3 connections over TCP to one address, for the tests of
spliced connections (delayed binding) that move between gateways (ecmp-gateways.e2e.test.ts). The
same stdin protocol as keepalive-client.py. Standard library only; the RPC helpers are
nfs-rpc-client.py's.

argv: host, then a JSON object {KEY: {"export": path, "name": file name, "file": the same file as this
host sees it}}. Commands on stdin, one per line, each answered with one JSON line on stdout:
  open N KEY  mounts KEY's export (MNT and LOOKUP over UDP, once), then opens N connections to port
              2049, each sending a NULL call and then a READ of 4 KiB (the call the gateway routes by
              its file handle); answers {"opened": N, "failed": F}
  check       READs 4 KiB at a new offset on every open connection and compares the bytes with the
              file; answers per KEY {"same": S, "changed": C, "failed": F, "errors": [first few]}:
              "changed" when the bytes differ or the server answered an error
  close       ends every connection from this side (shutdown) and waits for the server's end; answers
              per KEY {"fin": F, "rst": R, "open": O}
  quit        exits
A connection that fails is closed and not asked again. Every call times out after 3 s.
"""
import importlib.util
import json
import os
import random
import socket
import struct
import sys

_spec = importlib.util.spec_from_file_location(
    "rpc", os.path.join(os.path.dirname(os.path.abspath(__file__)), "nfs-rpc-client.py")
)
rpc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rpc)

NFS_PORT, MOUNT_PORT = 2049, 20048
CHUNK = 4096
host, spec = sys.argv[1], json.loads(sys.argv[2])
handles = {}
conns = []  # [socket, KEY, xid]


def handle(key):
    if key not in handles:
        c = rpc.Client(host)
        m = c.mnt(MOUNT_PORT, spec[key]["export"])
        if m["status"] != 0:
            raise RuntimeError(f"MNT {spec[key]['export']}: {m['status']}")
        f = c.lookup(NFS_PORT, bytes.fromhex(m["handle"]), spec[key]["name"])
        if f["status"] != 0:
            raise RuntimeError(f"LOOKUP {spec[key]['name']}: {f['status']}")
        handles[key] = (bytes.fromhex(f["handle"]), os.path.getsize(spec[key]["file"]))
    return handles[key]


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            raise ConnectionError("closed by the server")
        b += d
    return b


def call(conn, proc, args):
    """One call on the connection (RFC 5531 §11 record marking); the reply's results."""
    conn[2] += 1
    msg = rpc.call_msg(conn[2], rpc.NFS, 3, proc, args)
    conn[0].sendall(struct.pack(">I", 0x80000000 | len(msg)) + msg)
    body = b""
    while True:
        (mark,) = struct.unpack(">I", recv_exact(conn[0], 4))
        body += recv_exact(conn[0], mark & 0x7FFFFFFF)
        if mark & 0x80000000:
            break
    rep = rpc.parse_reply(body)
    if rep.get("xid") != conn[2] or rep.get("acceptStat") != 0:
        raise RuntimeError(f"reply {rep}")
    return rpc.Reader(body, rep["results"])


def read_same(conn):
    """READs 4 KiB at a random offset; True when the bytes are the file's."""
    fh, size = handle(conn[1])
    offset = random.randrange(0, max(1, size - CHUNK)) & ~511
    r = call(conn, 6, rpc.opaque(fh) + struct.pack(">QI", offset, CHUNK))
    if r.u32() != rpc.NFS3_OK:
        return False
    if r.u32():
        rpc.fattr(r)
    r.u32()  # count
    r.u32()  # eof
    data = r.opaque()
    with open(spec[conn[1]]["file"], "rb") as f:
        f.seek(offset)
        return data == f.read(CHUNK)


def say(o):
    sys.stdout.write(json.dumps(o) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    words = line.split()
    if not words:
        continue
    if words[0] == "open":
        failed, key = 0, words[2]
        for _ in range(int(words[1])):
            conn = None
            try:
                handle(key)
                conn = [socket.create_connection((host, NFS_PORT), timeout=3), key, random.randrange(1, 1 << 30)]
                call(conn, 0, b"")  # NULL first, as libnfs does: the gateway answers it
                if not read_same(conn):
                    raise RuntimeError("wrong bytes")
                conns.append(conn)
            except Exception:
                failed += 1
                if conn is not None:
                    conn[0].close()
        say({"opened": int(words[1]) - failed, "failed": failed})
    elif words[0] == "check":
        out, alive = {}, []
        for conn in conns:
            r = out.setdefault(conn[1], {"same": 0, "changed": 0, "failed": 0, "errors": []})
            try:
                r["same" if read_same(conn) else "changed"] += 1
                alive.append(conn)
            except Exception as e:
                r["failed"] += 1
                if len(r["errors"]) < 3:
                    r["errors"].append(f"{type(e).__name__}: {e}")
                conn[0].close()
        conns = alive
        say(out)
    elif words[0] == "close":
        out = {}
        for conn in conns:
            r = out.setdefault(conn[1], {"fin": 0, "rst": 0, "open": 0})
            s = conn[0]
            try:
                s.shutdown(socket.SHUT_WR)
                r["fin" if s.recv(1) == b"" else "open"] += 1
            except ConnectionResetError:
                r["rst"] += 1
            except socket.timeout:
                r["open"] += 1
            s.close()
        conns = []
        say(out)
    elif words[0] == "quit":
        break
for conn in conns:
    conn[0].close()
