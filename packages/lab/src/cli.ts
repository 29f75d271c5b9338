#!/usr/bin/env node
// onehost-lab: bring the namespace lab up, tear it down, or show what exists. As root.
import { parseArgs } from 'node:util';
import { startFrrDetached } from './frr.js';
import { createLab, destroyLab, type Lab, type LabStatus, openLab } from './lab.js';
import { checkId, hostsOf, type LabPlan } from './plan.js';
import { frrConfigs, frrDirOf } from './router.js';

const USAGE = `usage: onehost-lab up|down|status [--id ID] [--nodes N] [--clients N] [--no-services] [--nfs] [--gateways N] [--json]
  up      build the lab (idempotent: a healthy lab is left as it is, a broken one is rebuilt);
          --nfs adds rpcbind + nfs-ganesha on n1 (/srv/projects, export id 11, random MOUNT port)
          and n2 (/srv/home, export id 12, MOUNT port 20050);
          --gateways N puts a router (FRR: ECMP, eBGP + BFD to each gateway host) at 203.0.113.1 in front
          of N gateway hosts (gw, gw2 …), each with its own link to it and FRR of its own; a gateway's
          announce: { asn, vtySocket, peers } are printed
  down    stop everything in the lab's namespaces and delete them (also after a crash)
  status  show namespaces and services; exit 1 when the lab is not up and healthy
The default lab id is "demo" (namespaces ohl-demo-*).`;

function describe(plan: LabPlan, status: LabStatus, lab?: Lab): string {
  const lines = [`lab ${plan.id}: ${status.healthy ? 'up' : 'NOT healthy'} (namespaces ${plan.prefix}*)`];
  lines.push(`  cluster address (clients route it to the gateway): ${plan.vip}`);
  for (const h of hostsOf(plan)) {
    const extra = h.role === 'gateway' ? ` (outside ${plan.gateway.outside})` : '';
    lines.push(`  ${h.name.padEnd(3)} ${h.role.padEnd(8)} ${h.address.padEnd(14)}${extra}  netns ${h.netns}`);
  }
  for (const d of status.daemons) {
    lines.push(`  ${d.alive ? 'running' : 'DEAD   '} ${d.name.padEnd(12)} pid ${d.pid}`);
  }
  const router = lab?.router;
  if (router) {
    lines.push(`  router  AS ${router.router.asn} ${router.router.address}  netns ${router.router.netns}`);
    for (const g of router.gateways)
      lines.push(
        `  ${g.name.padEnd(3)} gateway  ${g.inside.padEnd(14)} (outside ${g.outside})  netns ${g.netns}  announce: { asn: ${g.asn}, vtySocket: ${frrDirOf(lab.runDir, g.name)}, peers: [${g.router}] }`,
      );
  }
  for (const n of lab?.nfs ?? [])
    lines.push(`  nfs     ${n.node} exports ${n.path} (id ${n.exportId}) from ${n.tree}; config ${n.config}`);
  for (const n of status.namespaces.filter((x) => !x.present)) lines.push(`  missing namespace ${n.name}`);
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      id: { type: 'string', default: 'demo' },
      nodes: { type: 'string' },
      clients: { type: 'string' },
      'no-services': { type: 'boolean', default: false },
      nfs: { type: 'boolean', default: false },
      gateways: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const command = positionals[0];
  if (values.help || !command || positionals.length > 1) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const id = values.id;
  checkId(id);
  const print = async (plan: LabPlan, status: LabStatus, lab?: Lab) => {
    console.log(
      values.json
        ? JSON.stringify({ plan, status, nfs: lab?.nfs ?? [] }, null, 2)
        : describe(plan, status, lab),
    );
  };
  switch (command) {
    case 'up': {
      const existing = await openLab(id);
      if (existing) {
        const status = await existing.status();
        if (status.healthy) {
          await print(existing.plan, status, existing);
          return 0;
        }
      }
      const lab = await createLab({
        id,
        owned: false,
        nodes: values.nodes === undefined ? undefined : Number(values.nodes),
        clients: values.clients === undefined ? undefined : Number(values.clients),
        services: !values['no-services'],
        nfs: values.nfs,
      });
      if (values.gateways !== undefined) {
        const layout = await lab.addRouter(Number(values.gateways));
        // one after the other: each records its daemons in the state file, so `down` ends them
        for (const [host, config] of frrConfigs(lab.plan, layout)) {
          const netns =
            host === 'r' ? layout.router.netns : layout.gateways.find((g) => g.name === host)!.netns;
          for (const d of await startFrrDetached(netns, frrDirOf(lab.runDir, host), config))
            await lab.record({ name: `${d.daemon} ${host}`, host, pid: d.pid, log: d.log });
        }
      }
      await print(lab.plan, await lab.status(), lab);
      return 0;
    }
    case 'down':
      await destroyLab(id);
      if (!values.json) console.log(`lab ${id}: down`);
      return 0;
    case 'status': {
      const lab = await openLab(id);
      if (!lab) {
        if (values.json) console.log(JSON.stringify({ id, up: false }));
        console.error(`lab ${id}: not up`);
        return 1;
      }
      const status = await lab.status();
      await print(lab.plan, status, lab);
      return status.healthy ? 0 : 1;
    }
    default:
      console.error(USAGE);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`onehost-lab: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
