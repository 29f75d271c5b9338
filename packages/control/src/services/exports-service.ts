import {
  Endianness,
  type ExportsServer,
  type MountPort,
  type RegisterMountRequest,
  Transport,
} from '@onehost/proto';
import { requireNodeSelf, requireRole } from '../auth/peer.js';
import { invalidArgument } from '../control-error.js';
import type { ExportsInput, ExportsRegistry } from '../exports-registry.js';
import type { Membership } from '../membership.js';
import { nodeName, port, quote } from '../validate.js';
import { exportsToProto } from './convert.js';
import { type RpcContext, unary } from './rpc.js';

/** NFSv3 file handles are at most 64 bytes (RFC 1813 NFS3_FHSIZE). */
const NFS3_FHSIZE = 64;
/** MOUNT dirpath is at most 1024 bytes (RFC 1813 MNTPATHLEN). */
const MNTPATHLEN = 1024;
const MAX_EXPORTS = 1024;

/** exportsService implements onehost.v1.Exports over the registry. */
export function exportsService(
  ctx: RpcContext,
  registry: ExportsRegistry,
  membership: Membership,
  clusterMountPorts: () => { tcp?: number; udp?: number },
): ExportsServer {
  return {
    registerMount: unary(ctx, 'Exports/RegisterMount', async (req, call) => {
      requireRole(call, ['node']);
      const name = nodeName('node_name', req.nodeName);
      requireNodeSelf(call, name);
      const input = checkRegistration(name, req);
      const rec = await registry.register(input);
      const cluster = clusterMountPorts();
      const clusterPorts: MountPort[] = [];
      if (cluster.tcp !== undefined)
        clusterPorts.push({ transport: Transport.TRANSPORT_TCP, port: cluster.tcp });
      if (cluster.udp !== undefined)
        clusterPorts.push({ transport: Transport.TRANSPORT_UDP, port: cluster.udp });
      return {
        nodeId: membership.member(name)?.id ?? 0,
        exportCount: rec.exports.length,
        clusterMountPorts: clusterPorts,
      };
    }),

    listExports: unary(ctx, 'Exports/ListExports', (_req, call) => {
      requireRole(call, ['operator', 'gateway']);
      return {
        nodes: registry.list().map((r) => exportsToProto(r, membership.member(r.nodeName)?.id ?? 0)),
      };
    }),
  };
}

/**
 * checkRegistration validates a RegisterMount request field by field. Throws ControlError
 * INVALID_ARGUMENT naming the first bad field.
 */
export function checkRegistration(name: string, req: RegisterMountRequest): ExportsInput {
  const mountPorts: ExportsInput['mountPorts'] = {};
  const seen = new Map<string, number>();
  req.mountPorts.forEach((mp, i) => {
    const t =
      mp.transport === Transport.TRANSPORT_TCP
        ? 'tcp'
        : mp.transport === Transport.TRANSPORT_UDP
          ? 'udp'
          : null;
    if (t === null)
      throw invalidArgument(`mount_ports[${i}].transport`, 'required: TRANSPORT_TCP or TRANSPORT_UDP');
    const first = seen.get(t);
    if (first !== undefined)
      throw invalidArgument(`mount_ports[${i}].transport`, `duplicate of mount_ports[${first}]`);
    seen.set(t, i);
    mountPorts[t] = port(`mount_ports[${i}].port`, mp.port);
  });

  const hl = req.handleLayout;
  if (hl === undefined) throw invalidArgument('handle_layout', 'required');
  if (!Number.isInteger(hl.offset) || hl.offset >= NFS3_FHSIZE)
    throw invalidArgument('handle_layout.offset', `must be below ${NFS3_FHSIZE}: ${hl.offset}`);
  if (hl.length < 1 || hl.length > 4)
    throw invalidArgument('handle_layout.length', `1 to 4 bytes: ${hl.length}`);
  if (hl.offset + hl.length > NFS3_FHSIZE)
    throw invalidArgument(
      'handle_layout.length',
      `offset + length exceeds the ${NFS3_FHSIZE}-byte NFSv3 handle`,
    );
  const endian =
    hl.endianness === Endianness.ENDIANNESS_BIG
      ? 'big'
      : hl.endianness === Endianness.ENDIANNESS_LITTLE
        ? 'little'
        : null;
  if (endian === null)
    throw invalidArgument('handle_layout.endianness', 'required: ENDIANNESS_BIG or ENDIANNESS_LITTLE');

  if (req.exports.length > MAX_EXPORTS)
    throw invalidArgument('exports', `at most ${MAX_EXPORTS}, not ${req.exports.length}`);
  if (req.exports.length > 0 && req.mountPorts.length === 0)
    throw invalidArgument('mount_ports', 'required when exports are given');
  const paths = new Map<string, number>();
  const ids = new Map<number, number>();
  const idLimit = 2 ** (8 * hl.length);
  const exports = req.exports.map((e, i) => {
    checkExportPath(`exports[${i}].path`, e.path);
    const p = paths.get(e.path);
    if (p !== undefined) throw invalidArgument(`exports[${i}].path`, `duplicate of exports[${p}]`);
    paths.set(e.path, i);
    if (e.exportId >= idLimit)
      throw invalidArgument(`exports[${i}].export_id`, `${e.exportId} does not fit in ${hl.length} bytes`);
    const d = ids.get(e.exportId);
    if (d !== undefined) throw invalidArgument(`exports[${i}].export_id`, `duplicate of exports[${d}]`);
    ids.set(e.exportId, i);
    return { path: e.path, exportId: e.exportId };
  });
  return {
    nodeName: name,
    mountPorts,
    exports,
    handleLayout: { offset: hl.offset, length: hl.length, endian },
  };
}

/** checkExportPath accepts an absolute, normalized path of at most 1024 bytes. Throws otherwise. */
function checkExportPath(field: string, path: string): void {
  if (path === '') throw invalidArgument(field, 'required');
  if (Buffer.byteLength(path) > MNTPATHLEN) throw invalidArgument(field, `longer than ${MNTPATHLEN} bytes`);
  if (!path.startsWith('/')) throw invalidArgument(field, `not absolute: ${quote(path)}`);
  if (path.includes('\0')) throw invalidArgument(field, 'contains NUL');
  if (
    path !== '/' &&
    (path.endsWith('/') ||
      path
        .split('/')
        .slice(1)
        .some((c) => c === '' || c === '.' || c === '..'))
  )
    throw invalidArgument(
      field,
      `not normalized (no empty, "." or ".." parts, no trailing "/"): ${quote(path)}`,
    );
}
