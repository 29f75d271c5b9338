import type { Lab } from '@onehost/lab';

// What the exposure suites send from the outside hosts at the gateway: a TCP connection attempt, VXLAN.

/**
 * PROBE connects once with a 2 s deadline and prints what happened: open, refused or timeout. A port
 * a filter drops times out; a test reads the drop counter to tell that from a lost packet.
 */
const PROBE = `
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()
    print('open')
except ConnectionRefusedError:
    print('refused')
except (socket.timeout, TimeoutError):
    print('timeout')
`;

/** tcpProbe tries one TCP connection from `host` to address:port (either family): open, refused or timeout. */
export async function tcpProbe(lab: Lab, host: string, address: string, port: number): Promise<string> {
  return (await lab.exec(host, 'python3', ['-c', PROBE, address, String(port)])).stdout.trim();
}

/**
 * VXLAN sends `count` VXLAN datagrams (RFC 7348 §5: flags 0x08, VNI 4242, an inner Ethernet frame
 * carrying an IPv4 header) to address:4789, over IPv4 or IPv6 by the address.
 */
const VXLAN = `
import socket, sys
inner = bytes.fromhex('020000000001' '020000000002' '0800') + bytes.fromhex('4500001c00004000401100000a0000010a000002') + bytes(8)
pkt = bytes.fromhex('08000000' '00109200') + inner
s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[2])):
    s.sendto(pkt, (sys.argv[1], 4789))
`;

/** sendVxlan sends `count` VXLAN datagrams from `host` to address:4789. */
export async function sendVxlan(lab: Lab, host: string, address: string, count: number): Promise<void> {
  await lab.exec(host, 'python3', ['-c', VXLAN, address, String(count)]);
}
