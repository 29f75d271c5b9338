#!/usr/bin/env python3
"""nfs-rpc-client.py: the UDP ONC RPC client of the NFS end-to-end suite (nfs.e2e.test.ts).

No stock tool sends MOUNT and NFSv3 calls over UDP without the kernel NFS client, so this one does:
MNT (RFC 1813 Appendix I), GETATTR, LOOKUP, READ, CREATE, WRITE and COMMIT (RFC 1813 §3.3), with AUTH_SYS credentials
(RFC 5531 Appendix A), plus raw datagrams and TCP records for the malformed-payload checks and a
bounded fuzzer. Standard library only. One JSON object in (argv[1]), one JSON object out (stdout).

Every call waits for the reply to its own xid (1 s, three tries) and reports the address and port
the reply came from: a MOUNT reply must come from the cluster address and the cluster's MOUNT port.
"""
import hashlib
import json
import random
import socket
import struct
import sys

MOUNT, NFS = 100005, 100003
NFS3_OK = 0


def pad(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def opaque(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + pad(b)


def auth_sys() -> bytes:
    # authsys_parms: stamp, machinename, uid, gid, gids<16>
    return struct.pack(">I", 0) + opaque(b"onehost-e2e") + struct.pack(">III", 0, 0, 0)


def call_msg(xid: int, prog: int, vers: int, proc: int, args: bytes) -> bytes:
    return (
        struct.pack(">IIIIII", xid, 0, 2, prog, vers, proc)
        + struct.pack(">I", 1)
        + opaque(auth_sys())
        + struct.pack(">II", 0, 0)
        + args
    )


class Reader:
    def __init__(self, b: bytes, pos: int = 0):
        self.b, self.pos = b, pos

    def u32(self) -> int:
        (v,) = struct.unpack_from(">I", self.b, self.pos)
        self.pos += 4
        return v

    def u64(self) -> int:
        (v,) = struct.unpack_from(">Q", self.b, self.pos)
        self.pos += 8
        return v

    def opaque(self) -> bytes:
        n = self.u32()
        v = self.b[self.pos : self.pos + n]
        self.pos += n + (-n % 4)
        return v


def parse_reply(b: bytes) -> dict:
    """The RPC reply header (RFC 5531 §9); `results` is where SUCCESS results start."""
    r = Reader(b)
    out = {"xid": r.u32()}
    if r.u32() != 1:
        return {**out, "error": "not a reply"}
    stat = r.u32()
    if stat == 0:
        r.u32()
        r.opaque()  # verifier
        accept = r.u32()
        out.update(replyStat="accepted", acceptStat=accept)
        if accept == 2:
            out.update(low=r.u32(), high=r.u32())
        out["results"] = r.pos
    else:
        reject = r.u32()
        out.update(replyStat="denied", rejectStat=reject)
        if reject == 0:
            out.update(low=r.u32(), high=r.u32())
        else:
            out["authStat"] = r.u32()
    return out


def family(host: str) -> int:
    """The socket family of an address literal: IPv6 when it has a colon."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class Client:
    def __init__(self, host: str):
        self.host = host
        self.sock = socket.socket(family(host), socket.SOCK_DGRAM)
        self.sock.bind(("::" if ":" in host else "0.0.0.0", 0))
        self.xid = random.randrange(1, 1 << 31)

    def exchange(self, port: int, msg: bytes, xid: int, tries: int = 3, timeout: float = 1.0):
        self.sock.settimeout(timeout)
        for _ in range(tries):
            self.sock.sendto(msg, (self.host, port))
            try:
                while True:
                    data, src = self.sock.recvfrom(65536)
                    if len(data) >= 4 and struct.unpack_from(">I", data)[0] == xid:
                        return data, src
            except socket.timeout:
                continue
        raise TimeoutError(f"no reply from {self.host}:{port} to xid {xid:#x}")

    def call(self, port: int, prog: int, vers: int, proc: int, args: bytes):
        self.xid += 1
        data, src = self.exchange(port, call_msg(self.xid, prog, vers, proc, args), self.xid)
        rep = parse_reply(data)
        if rep.get("acceptStat") != 0:
            raise RuntimeError(f"call {prog}/{vers}/{proc}: {rep}")
        return Reader(data, rep["results"]), src

    def mnt(self, port: int, path: str) -> dict:
        r, src = self.call(port, MOUNT, 3, 1, opaque(path.encode()))
        status = r.u32()
        out = {"status": status, "from": list(src)[:2]}
        if status == 0:
            out["handle"] = r.opaque().hex()
        return out

    def getattr(self, port: int, fh: bytes) -> dict:
        r, src = self.call(port, NFS, 3, 1, opaque(fh))
        status = r.u32()
        out = {"status": status, "from": list(src)[:2]}
        if status == NFS3_OK:
            out.update(fattr(r))
        return out

    def lookup(self, port: int, dirfh: bytes, name: str) -> dict:
        r, src = self.call(port, NFS, 3, 3, opaque(dirfh) + opaque(name.encode()))
        status = r.u32()
        out = {"status": status, "from": list(src)[:2]}
        if status == NFS3_OK:
            out["handle"] = r.opaque().hex()
            if r.u32():
                out.update(fattr(r))
        return out

    def read(self, port: int, fh: bytes, offset: int, count: int):
        r, _ = self.call(port, NFS, 3, 6, opaque(fh) + struct.pack(">QI", offset, count))
        status = r.u32()
        if status != NFS3_OK:
            return status, b"", True
        if r.u32():
            fattr(r)
        r.u32()  # count
        eof = r.u32() == 1
        return status, r.opaque(), eof

    def create(self, port: int, dirfh: bytes, name: str) -> dict:
        # CREATE3args (RFC 1813 §3.3.8): UNCHECKED, mode 0644, nothing else set
        how = struct.pack(">II", 0, 1) + struct.pack(">I", 0o644) + struct.pack(">IIIII", 0, 0, 0, 0, 0)
        r, _ = self.call(port, NFS, 3, 8, opaque(dirfh) + opaque(name.encode()) + how)
        status = r.u32()
        out = {"status": status}
        if status == NFS3_OK and r.u32():
            out["handle"] = r.opaque().hex()
        return out

    def write(self, port: int, fh: bytes, offset: int, data: bytes, stable: int):
        # WRITE3args (RFC 1813 §3.3.7); the reply's verifier changes when the server restarted
        args = opaque(fh) + struct.pack(">QII", offset, len(data), stable) + opaque(data)
        r, _ = self.call(port, NFS, 3, 7, args)
        status = r.u32()
        if status != NFS3_OK:
            return status, 0, b""
        wcc(r)
        count = r.u32()
        r.u32()  # committed
        return status, count, r.b[r.pos : r.pos + 8]

    def commit(self, port: int, fh: bytes):
        # COMMIT3args (RFC 1813 §3.3.21): the whole file
        r, _ = self.call(port, NFS, 3, 21, opaque(fh) + struct.pack(">QI", 0, 0))
        status = r.u32()
        if status != NFS3_OK:
            return status, b""
        wcc(r)
        return status, r.b[r.pos : r.pos + 8]


def wcc(r: Reader) -> None:
    """wcc_data (RFC 1813 §2.6): pre_op_attr, post_op_attr."""
    if r.u32():
        r.u64(), r.u64(), r.u64()
    if r.u32():
        fattr(r)


def write_all(c: Client, port: int, dirfh: bytes, name: str, size: int, chunk: int, seed: int) -> dict:
    """CREATE name, WRITE size pseudo-random bytes (UNSTABLE), COMMIT; the sha256 of what was sent."""
    made = c.create(port, dirfh, name)
    if made["status"] != NFS3_OK:
        return {"status": made["status"], "stage": "create"}
    fh = bytes.fromhex(made["handle"])
    rnd = random.Random(seed)
    h = hashlib.sha256()
    verfs = set()
    offset, writes = 0, 0
    while offset < size:
        data = rnd.randbytes(min(chunk, size - offset))
        status, count, verf = c.write(port, fh, offset, data, 0)
        writes += 1
        if status != NFS3_OK or count == 0:
            return {"status": status, "stage": "write", "bytes": offset}
        h.update(data[:count])
        verfs.add(verf)
        offset += count
    status, verf = c.commit(port, fh)
    if status != NFS3_OK:
        return {"status": status, "stage": "commit", "bytes": offset}
    verfs.add(verf)
    # one verifier throughout: the server kept everything it acknowledged (else the writes must be resent)
    return {"status": 0, "handle": made["handle"], "bytes": offset, "writes": writes, "sha256": h.hexdigest(), "verifiers": len(verfs)}


def fattr(r: Reader) -> dict:
    """fattr3 (RFC 1813 §2.5): type, mode, nlink, uid, gid, size, used, rdev, fsid, fileid, times."""
    ftype = r.u32()
    r.u32(), r.u32(), r.u32(), r.u32()
    size = r.u64()
    r.u64(), r.u32(), r.u32()
    r.u64()
    fileid = r.u64()
    for _ in range(6):
        r.u32()
    return {"type": ftype, "size": size, "fileid": fileid}


def read_all(c: Client, port: int, fh: bytes, chunk: int) -> dict:
    h = hashlib.sha256()
    offset, reads = 0, 0
    while True:
        status, data, eof = c.read(port, fh, offset, chunk)
        reads += 1
        if status != NFS3_OK:
            return {"status": status, "bytes": offset, "reads": reads}
        h.update(data)
        offset += len(data)
        if eof or not data:
            return {"status": 0, "bytes": offset, "reads": reads, "sha256": h.hexdigest()}
        if reads > 100000:  # bounded whatever the server says
            raise RuntimeError("too many reads")


def raw(host: str, port: int, datagram: bytes, timeout: float) -> dict:
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.settimeout(timeout)
    s.sendto(datagram, (host, port))
    try:
        data, src = s.recvfrom(65536)
        return {"reply": parse_reply(data) if len(data) >= 12 else {"short": data.hex()}, "from": list(src)[:2]}
    except socket.timeout:
        return {"reply": None}
    finally:
        s.close()


def tcp_raw(host: str, port: int, stream: bytes, timeout: float) -> dict:
    """Sends bytes on a TCP connection; reports the replies' records and whether the peer closed."""
    s = socket.create_connection((host, port), timeout=timeout)
    s.sendall(stream)
    buf, closed = b"", False
    try:
        while True:
            d = s.recv(65536)
            if not d:
                closed = True
                break
            buf += d
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    s.close()
    replies = []
    while len(buf) >= 4:
        n = struct.unpack_from(">I", buf)[0] & 0x7FFFFFFF
        replies.append(parse_reply(buf[4 : 4 + n]))
        buf = buf[4 + n :]
    return {"replies": replies, "closed": closed}


def fuzz(host: str, ports: list, seeds: list, count: int, seed: int) -> dict:
    """Sends `count` mutated copies of the seed calls to each port (bounded); replies are not read."""
    rnd = random.Random(seed)
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    sent = 0
    for port in ports:
        for _ in range(count):
            m = bytearray(bytes.fromhex(rnd.choice(seeds)))
            kind = rnd.randrange(4)
            if kind == 0:
                m = m[: rnd.randrange(len(m) + 1)]
            elif kind == 1:
                for _ in range(rnd.randrange(1, 5)):
                    m[rnd.randrange(len(m))] = rnd.randrange(256)
            elif kind == 2 and len(m) >= 8:
                at = rnd.randrange(len(m) // 4) * 4
                m[at : at + 4] = struct.pack(">I", rnd.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x10000, 401, 1025, 65]))
            else:
                m += bytes(rnd.randrange(256) for _ in range(rnd.randrange(64)))
            s.sendto(bytes(m), (host, port))  # blocking: waits for room, never floods
            sent += 1
    s.close()
    return {"sent": sent}


def main() -> None:
    req = json.loads(sys.argv[1])
    op, host = req["op"], req["host"]
    if op == "raw":
        out = raw(host, req["port"], bytes.fromhex(req["hex"]), req.get("timeout", 1.0))
    elif op == "tcp":
        out = tcp_raw(host, req["port"], bytes.fromhex(req["hex"]), req.get("timeout", 1.0))
    elif op == "fuzz":
        out = fuzz(host, req["ports"], req["seeds"], req["count"], req["seed"])
    elif op == "call":
        c = Client(host)
        c.xid += 1
        msg = call_msg(c.xid, req["prog"], req["vers"], req["proc"], bytes.fromhex(req.get("args", "")))
        data, src = c.exchange(req["port"], msg, c.xid)
        out = {"reply": parse_reply(data), "from": list(src)[:2], "hex": data.hex()}
    else:
        c = Client(host)
        mount, nfs = req.get("mountPort", 20048), req.get("nfsPort", 2049)
        if op == "mnt":
            out = c.mnt(mount, req["path"])
        elif op == "getattr":
            out = c.getattr(nfs, bytes.fromhex(req["handle"]))
        elif op == "lookup":
            out = c.lookup(nfs, bytes.fromhex(req["handle"]), req["name"])
        elif op == "writeall":
            out = write_all(c, nfs, bytes.fromhex(req["handle"]), req["name"], req["size"], req["chunk"], req["seed"])
        elif op == "readall":
            out = read_all(c, nfs, bytes.fromhex(req["handle"]), req["chunk"])
        else:
            raise SystemExit(f"unknown op {op}")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
