# Counts UDP datagrams on (address, port); prints "ready", then one line per datagram:
# "<source port> <length> <first payload bytes as hex>". Exits after N datagrams or 20 s.
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind((sys.argv[1], int(sys.argv[2])))
want = int(sys.argv[3])
s.settimeout(20)
print("ready", flush=True)
end = time.time() + 20
n = 0
while n < want and time.time() < end:
    try:
        data, peer = s.recvfrom(65535)
    except socket.timeout:
        break
    n += 1
    print(peer[1], len(data), data[:8].hex(), flush=True)
print("done", n, flush=True)
