import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runInNetns, waitFor } from '@onehost/testkit';
import type { Daemon } from './services.js';
import { alive, stopPids } from './teardown.js';

/**
 * NfsSpec is one node's NFS server: nfs-ganesha (VFS FSAL, NFSv3 over UDP and TCP) exporting one tree,
 * with its own rpcbind.
 */
export interface NfsSpec {
  /** lab node (n1, n2 …). */
  node: string;
  /** the path MOUNT clients give; must be under /srv (the node's own /srv in its mount namespace). */
  path: string;
  /** Export_Id: ganesha writes it into bytes 2-3 of every file handle of the export. */
  exportId: number;
  /** MNT_Port; absent: ganesha picks random MOUNT ports (one per transport), new ones at each start. */
  mntPort?: number;
  /** clients may write (Access_Type RW); read-only when absent */
  writable?: boolean;
}

/**
 * The lab's NFS servers unless told otherwise: two nodes, different trees and export ids, one with a
 * random MOUNT port and one with a fixed port that differs from the cluster's (the gateway rewrites
 * MOUNT calls to each node's own port, claim 3); the second is writable.
 */
export const DEFAULT_NFS: readonly NfsSpec[] = [
  { node: 'n1', path: '/srv/projects', exportId: 11 },
  { node: 'n2', path: '/srv/home', exportId: 12, mntPort: 20050, writable: true },
];

/** NfsServer is a running NFS server of the lab. */
export interface NfsServer extends NfsSpec {
  /** the exported tree as the host sees it (files written here are served). */
  tree: string;
  /** ganesha's configuration file (the agent reads its EXPORT blocks). */
  config: string;
  /** ganesha's log file. */
  log: string;
  /** pid of the node's rpcbind: its mount namespace is the NFS server's (`nsenter -t <pid> -m`). */
  rpcbindPid: number;
  /** pid of ganesha.nfsd. */
  ganeshaPid: number;
}

/** The node's mountd ports per transport, as its rpcbind lists them (MOUNT v3). */
export interface MountdPorts {
  udp?: number;
  tcp?: number;
}

/** ganeshaConfig is the configuration of one lab NFS server (NFSv3 only, no NLM or RQUOTA). */
export function ganeshaConfig(spec: NfsSpec): string {
  return `# onehost lab: nfs-ganesha for ${spec.node}
NFS_CORE_PARAM {
  Protocols = 3;
  Enable_NLM = false;
  Enable_RQUOTA = false;
${spec.mntPort === undefined ? '  # MNT_Port unset: random MOUNT ports, new ones at each start\n' : `  MNT_Port = ${spec.mntPort};\n`}}
NFSV4 { Graceless = true; }
EXPORT {
  Export_Id = ${spec.exportId};
  Path = ${spec.path};
  Pseudo = ${spec.path};
  Protocols = 3;
  Transports = TCP, UDP;
  Access_Type = ${spec.writable === true ? 'RW' : 'RO'};
  Squash = No_Root_Squash;
  SecType = sys;
  FSAL { Name = VFS; }
}
`;
}

/**
 * The NFS server's mount namespace, built before rpcbind starts (`sh -c`, arguments $1…$3): its own
 * tmpfs /run (rpcbind keeps its socket and state there, so each node needs its own) and /var/lib/nfs
 * (ganesha's recovery state), the node's tree on /srv, and the lab's run directory moved back under
 * the new /run so the configuration and logs keep their paths.
 */
const NAMESPACE_SCRIPT = `set -e
lab="$1"; srv="$2"
mount -t tmpfs tmpfs /var/lib/nfs
mkdir /var/lib/nfs/hold
mount --bind "$lab" /var/lib/nfs/hold
mount --bind "$srv" /srv
mount -t tmpfs tmpfs /run
mkdir -p "$lab" /run/rpcbind
mount --move /var/lib/nfs/hold "$lab"
mkdir -p /var/lib/nfs/ganesha
exec rpcbind -f -w
`;

/** startDetached starts a daemon that outlives this process, its output appended to `log`. */
function startDetached(file: string, args: string[], log: string): number {
  const fd = openSync(log, 'a');
  try {
    const child = spawn(file, args, { detached: true, stdio: ['ignore', fd, fd] });
    child.unref();
    if (child.pid === undefined) throw new Error(`could not start ${file}`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/**
 * mountdPorts reads the node's MOUNT v3 ports from its rpcbind (`rpcinfo -p 127.0.0.1` in the node).
 * Throws when rpcbind does not answer.
 */
export async function mountdPorts(netns: string): Promise<MountdPorts> {
  const { stdout } = await runInNetns(netns, 'rpcinfo', ['-p', '127.0.0.1']);
  const out: MountdPorts = {};
  for (const line of stdout.split('\n')) {
    const [prog, vers, proto, port] = line.trim().split(/\s+/);
    if (prog === '100005' && vers === '3' && (proto === 'udp' || proto === 'tcp')) out[proto] = Number(port);
  }
  return out;
}

async function nfsReady(netns: string): Promise<boolean> {
  const p = await mountdPorts(netns).catch(() => ({}) as MountdPorts);
  return p.udp !== undefined && p.tcp !== undefined;
}

/**
 * startGanesha starts ganesha.nfsd in the NFS server's mount and network namespaces (those of its
 * rpcbind) and resolves with its pid once MOUNT is registered over UDP and TCP. Throws (with the end of
 * ganesha's log) when it does not come up within 20 s.
 */
export async function startGanesha(
  netns: string,
  s: Omit<NfsServer, 'ganeshaPid'>,
  dir: string,
): Promise<number> {
  const pid = startDetached(
    'nsenter',
    [
      '-t',
      String(s.rpcbindPid),
      '-m',
      '-n',
      'ganesha.nfsd',
      '-F',
      '-f',
      s.config,
      '-L',
      s.log,
      '-p',
      join(dir, 'ganesha.pid'),
    ],
    join(dir, 'ganesha.out'),
  );
  try {
    await waitFor(
      async () => {
        if (!alive(pid)) throw new Error('ganesha.nfsd exited');
        return nfsReady(netns);
      },
      { what: `nfs-ganesha of ${s.node}`, timeoutMs: 20_000, intervalMs: 50 },
    );
  } catch (err) {
    await stopPids([pid]).catch(() => undefined);
    const tail = existsSync(s.log) ? (await readFile(s.log, 'utf8')).split('\n').slice(-15).join('\n') : '';
    throw new Error(`nfs-ganesha for ${s.node} did not start: ${(err as Error).message}\n${tail}`);
  }
  return pid;
}

/**
 * startNfs starts one node's NFS server: rpcbind in a mount namespace of its own (see
 * NAMESPACE_SCRIPT), then ganesha.nfsd in it. The tree is `<dir>/srv/<path below /srv>`, created
 * empty (put files there). Resolves with the server and the daemons to record. Throws when a daemon
 * does not come up (after stopping what it started).
 */
export async function startNfs(
  netns: string,
  spec: NfsSpec,
  dir: string,
  labRunDir: string,
): Promise<{ server: NfsServer; daemons: Daemon[] }> {
  if (!/^\/srv\/[A-Za-z0-9._/-]+$/.test(spec.path) || spec.path.split('/').includes('..'))
    throw new Error(`NFS export ${spec.path}: must be a path under /srv`);
  if (!existsSync('/srv') || !existsSync('/var/lib/nfs'))
    throw new Error('NFS lab servers need the directories /srv and /var/lib/nfs (nfs-common) on the host');
  const srv = join(dir, 'srv');
  const tree = join(srv, spec.path.slice('/srv/'.length));
  await mkdir(tree, { recursive: true, mode: 0o755 });
  const config = join(dir, 'ganesha.conf');
  await writeFile(config, ganeshaConfig(spec));
  const log = join(dir, 'ganesha.log');
  const rpcbindPid = startDetached(
    'ip',
    [
      'netns',
      'exec',
      netns,
      'unshare',
      '-m',
      '--propagation',
      'private',
      'sh',
      '-c',
      NAMESPACE_SCRIPT,
      'sh',
      labRunDir,
      srv,
    ],
    join(dir, 'rpcbind.log'),
  );
  const rpcbind: Daemon = {
    name: `rpcbind ${spec.node}`,
    host: spec.node,
    pid: rpcbindPid,
    log: join(dir, 'rpcbind.log'),
  };
  try {
    await waitFor(
      async () => {
        if (!alive(rpcbindPid)) throw new Error('rpcbind exited');
        return runInNetns(netns, 'rpcinfo', ['-p', '127.0.0.1']).then(
          () => true,
          () => false,
        );
      },
      { what: `rpcbind of ${spec.node}`, timeoutMs: 10_000, intervalMs: 50 },
    );
  } catch (err) {
    await stopPids([rpcbindPid]).catch(() => undefined);
    const out = existsSync(rpcbind.log) ? await readFile(rpcbind.log, 'utf8') : '';
    throw new Error(`rpcbind for ${spec.node} did not start: ${(err as Error).message}\n${out}`);
  }
  const base = { ...spec, tree, config, log, rpcbindPid };
  let ganeshaPid: number;
  try {
    ganeshaPid = await startGanesha(netns, base, dir);
  } catch (err) {
    await stopPids([rpcbindPid]).catch(() => undefined);
    throw err;
  }
  return {
    server: { ...base, ganeshaPid },
    daemons: [rpcbind, { name: `ganesha ${spec.node}`, host: spec.node, pid: ganeshaPid, log }],
  };
}

/**
 * stopGanesha ends ganesha.nfsd with SIGTERM (it unregisters from rpcbind on the way out; a few
 * seconds) and waits for it, SIGKILL after 15 s. Never throws for a process that is already gone.
 */
export async function stopGanesha(s: NfsServer): Promise<void> {
  await stopPids([s.ganeshaPid], 15_000);
}
