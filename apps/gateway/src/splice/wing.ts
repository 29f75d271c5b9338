import { MSG, type Shift } from '@onehost/splice';
import { type Destination, META_STRIDE } from '@onehost/tun';
import { TCP_FLAGS } from '@onehost/wire';
import { MAX_NODE_ID, type NodeEndpoint, type SplicePath } from '../datapath.js';
import type { PacketSink } from '../packet-io.js';
import { ClientTcp, type ClientTcpState } from './client-tcp.js';
import type { SpliceFlows } from './handover.js';
import type { KernelShifts } from './kernel-shifts.js';
import { type ClientAddress, ShiftTable } from './shifts.js';

export interface SpliceWingOptions {
  /** the data path's sink: handovers leave through it, to the rows the wing has in its table */
  sink: Pick<PacketSink, 'sendUdp'>;
  /** the UDP port node agents take spliced segments and handovers on (docs/splice.md) */
  port: number;
}

/**
 * SINGLE_PACKET: handovers up to this long go through the data path's sender (one unfragmented packet
 * on any interconnect, IPv4's minimum reassembly size less the IPv4 and UDP headers); longer ones take
 * the kernel's UDP socket, which fragments.
 */
const SINGLE_PACKET = 576 - 28;

/** Type byte 2 before a client segment the agent gets as it is (docs/splice.md). */
const SEGMENT_PREFIX = Uint8Array.of(MSG.SEGMENT);

/**
 * SpliceWing is the packet side of delayed binding (docs/splice.md). For the data path (SplicePath) it
 * adds each node's agent to the destination table, shifts the client segments of spliced flows whose
 * offsets are known, and watches the clients of held connections; for the handover (SpliceFlows) it
 * tells the client's TCP state and sends the handover datagram.
 */
export class SpliceWing implements SplicePath, SpliceFlows {
  private readonly clients = new ClientTcp();
  private readonly shifts = new ShiftTable();
  /** by node id: the row of its agent's segments (handovers: the next row), -1 when none */
  private readonly rowOf = new Int32Array(MAX_NODE_ID + 1).fill(-1);
  private readonly msgArena = Buffer.alloc(65_536);
  private readonly msgMeta = new Int32Array(META_STRIDE);
  private readonly msgDst = new Int32Array(1);
  private readonly msgSport = new Int32Array(1);
  /** by node id: its agent's address (set with its rows), null when none */
  private readonly addressOf: (string | null)[] = new Array(MAX_NODE_ID + 1).fill(null);
  private readonly listed: (string | null)[] = new Array(MAX_NODE_ID + 1).fill(null);
  private datagrams: ((message: Uint8Array, address: string, port: number) => void) | null = null;
  private kernel: KernelShifts | null = null;
  private kernelSegments: () => number = () => 0;

  constructor(private readonly o: SpliceWingOptions) {
    this.clients.onSyn = (client, clientPort, port) => this.newConnection(client, clientPort, port);
  }

  /**
   * newConnection: a client SYN reached the host's stack on ports an earlier spliced flow used (libnfs
   * takes reserved ports again once a server closed or reset the connection: the gateway sees neither
   * the node's FIN nor its RST). The old offsets go, or the kernel would shift the new connection's
   * segments to the node and the gateway's stack would never see them (the client stalls).
   */
  private newConnection(client: ClientAddress, clientPort: number, port: number): void {
    this.shifts.forget(client, clientPort, port);
    this.kernel?.noteControl(client, clientPort, port, TCP_FLAGS.SYN, Date.now());
  }

  /** nodeRows lists a node agent's rows: spliced segments (after type byte 2), then handovers. */
  nodeRows(n: NodeEndpoint): Destination[] {
    if (n.id >= 0 && n.id <= MAX_NODE_ID) this.listed[n.id] = n.address;
    return [
      { address: n.address, port: this.o.port, prefix: SEGMENT_PREFIX },
      { address: n.address, port: this.o.port },
    ];
  }

  placeRows(firstRow: Int32Array): void {
    this.rowOf.set(firstRow);
    for (let id = 0; id <= MAX_NODE_ID; id++) {
      this.addressOf[id] = firstRow[id]! >= 0 ? this.listed[id]! : null;
      this.listed[id] = null;
    }
  }

  /**
   * useDatagrams gives the handovers longer than one packet an ordinary UDP socket (bound to the
   * interconnect address and the splice port), which the kernel fragments; the data path's raw sender
   * cannot send a datagram over the interconnect's MTU (EMSGSIZE, counted as a send error and lost).
   */
  useDatagrams(send: (message: Uint8Array, address: string, port: number) => void): void {
    this.datagrams = send;
  }

  shiftHere(arena: Uint8Array, off: number, len: number): boolean {
    return this.shifts.shiftHere(arena, off, len);
  }

  agentRow(node: number): number {
    return this.rowOf[node]!;
  }

  noteLocal(arena: Uint8Array, off: number, len: number): void {
    this.clients.note(arena, off, len);
  }

  /** setSplicePorts names the TCP ports whose connections the gateway holds until a record routes them. */
  setSplicePorts(ports: readonly number[]): void {
    this.clients.setPorts(ports);
  }

  /**
   * setShift records the offsets of a spliced flow (from its node's agent at `from`, docs/splice.md);
   * with the kernel's program (`useKernel`) the kernel shifts its client segments from now on.
   */
  setShift(shift: Shift, from?: string): void {
    this.shifts.set(shift);
    if (this.kernel !== null && from !== undefined) this.kernel.set(shift, from, Date.now());
  }

  /**
   * useKernel hands the spliced flows' client segments to the gateway's tc program (kernel data path):
   * `segments` reads how many it shifted. The user-space shift stays for what the kernel leaves.
   */
  useKernel(kernel: KernelShifts, segments: () => number): void {
    this.kernel = kernel;
    this.kernelSegments = segments;
    this.shifts.onControl = (sh, flags) =>
      kernel.noteControl(sh.clientAddr6 ?? sh.clientAddr, sh.clientPort, sh.clusterPort, flags, Date.now());
  }

  /** splicedInKernel is how many client segments of spliced flows the kernel shifted. */
  get splicedInKernel(): number {
    return this.kernelSegments();
  }

  /** kernelFlows is the number of spliced flows the kernel shifts (0 without the program). */
  get kernelFlows(): number {
    return this.kernel?.size ?? 0;
  }

  /** shiftOf returns a spliced flow's offsets, once its node's agent told them. */
  shiftOf(client: ClientAddress, clientPort: number, clusterPort: number): Shift | undefined {
    return this.shifts.get(client, clientPort, clusterPort);
  }

  clientTcpState(client: number | Uint8Array, clientPort: number): ClientTcpState | undefined {
    return this.clients.get(client, clientPort);
  }

  forgetClient(client: number | Uint8Array, clientPort: number): void {
    this.clients.forget(client, clientPort);
  }

  /**
   * sendHandover sends one handover datagram (docs/splice.md) to node `node`'s agent; false when the
   * node has no destination, the message is longer than 64 KiB, or the socket would block (a long one:
   * when no socket was given).
   */
  sendHandover(node: number, message: Uint8Array): boolean {
    const row = node >= 0 && node <= MAX_NODE_ID ? this.rowOf[node]! : -1;
    if (row < 0 || message.length > this.msgArena.length) return false;
    if (message.length > SINGLE_PACKET) {
      const address = this.addressOf[node];
      if (this.datagrams === null || address === null || address === undefined) return false;
      this.datagrams(message, address, this.o.port);
      return true;
    }
    this.msgArena.set(message, 0);
    this.msgMeta[0] = 0;
    this.msgMeta[1] = message.length;
    this.msgDst[0] = row + 1;
    this.msgSport[0] = this.o.port;
    return this.o.sink.sendUdp(this.msgArena, this.msgMeta, 0, 1, this.msgDst, this.msgSport) === 1;
  }

  get splicedShifted(): Float64Array {
    return this.shifts.shifted;
  }

  get splicedToAgent(): Float64Array {
    return this.shifts.toAgent;
  }

  get shiftCount(): number {
    return this.shifts.size;
  }
}
