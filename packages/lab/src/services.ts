import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runInNetns, waitFor } from '@onehost/testkit';

/** Daemon is a detached process a lab started and `down` must stop. */
export interface Daemon {
  /** What it is, e.g. "nginx n1". */
  name: string;
  /** Lab host it runs in (c1, gw, n1 ...). */
  host: string;
  pid: number;
  /** File with its output or error log. */
  log: string;
}

/** nginxConfig is the configuration of one per-host nginx: own pid, logs and temp dirs under `dir`. */
export function nginxConfig(
  dir: string,
  port: number | readonly number[],
  hostName: string,
  ipv6 = false,
): string {
  const ports = typeof port === 'number' ? [port] : port;
  return `# onehost lab: nginx for ${hostName}
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  default_type text/plain;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  server {
${ports.map((p) => `    listen ${p};${ipv6 ? `\n    listen [::]:${p};` : ''}`).join('\n')}
    root ${dir}/html;
    add_header X-Node ${hostName} always;
    location / { index index.txt; }
  }
}
`;
}

/** listening tells whether something in `netns` listens on TCP `port`. */
export async function listening(netns: string, port: number): Promise<boolean> {
  const { stdout } = await runInNetns(netns, 'ss', ['-Hltn', `sport = :${port}`]);
  return stdout.trim().length > 0;
}

async function readPid(file: string): Promise<number | undefined> {
  if (!existsSync(file)) return undefined;
  const pid = Number.parseInt(await readFile(file, 'utf8'), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * startNginx starts an nginx in `netns` that listens on 0.0.0.0:`port` (or each of several ports; so it answers on any local address,
 * a cluster address too; with `ipv6` on [::]:`port` as well) and serves `/` as a page naming `hostName` (`<hostName>\n`; every answer carries
 * the header X-Node). Other files can be put in `<dir>/html`. Files live under `dir`. Resolves once the port
 * listens. Throws when nginx fails to start (with its error log).
 */
export async function startNginx(
  netns: string,
  hostName: string,
  dir: string,
  port: number | readonly number[],
  ipv6 = false,
): Promise<Daemon> {
  for (const sub of ['tmp', 'html']) await mkdir(join(dir, sub), { recursive: true, mode: 0o755 });
  await writeFile(join(dir, 'html', 'index.txt'), `${hostName}\n`, { mode: 0o644 });
  const conf = join(dir, 'nginx.conf');
  await writeFile(conf, nginxConfig(dir, port, hostName, ipv6));
  const log = join(dir, 'error.log');
  // nginx forks into the background once its sockets are bound; the pid file follows the fork.
  await runInNetns(netns, 'nginx', ['-c', conf, '-p', dir, '-e', log]).catch(async (err) => {
    const text = existsSync(log) ? await readFile(log, 'utf8') : '';
    throw new Error(`nginx for ${hostName} did not start: ${(err as Error).message}\n${text}`);
  });
  const pid = await waitFor(() => readPid(join(dir, 'nginx.pid')), { what: `nginx pid of ${hostName}` });
  const first = typeof port === 'number' ? port : port[0]!;
  await waitFor(() => listening(netns, first), { what: `nginx of ${hostName} on :${first}` });
  return { name: `nginx ${hostName}`, host: hostName, pid, log };
}

/** startIperf3 starts an iperf3 server daemon in `netns` on `port`; resolves once it listens. Throws on failure. */
export async function startIperf3(
  netns: string,
  hostName: string,
  dir: string,
  port = 5201,
): Promise<Daemon> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const pidFile = join(dir, 'iperf3.pid');
  const log = join(dir, 'iperf3.log');
  await runInNetns(netns, 'iperf3', ['-s', '-D', '-p', String(port), '--pidfile', pidFile, '--logfile', log]);
  const pid = await waitFor(() => readPid(pidFile), { what: `iperf3 pid of ${hostName}` });
  await waitFor(() => listening(netns, port), { what: `iperf3 of ${hostName} on :${port}` });
  return { name: `iperf3 ${hostName}`, host: hostName, pid, log };
}
