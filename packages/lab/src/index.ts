export { EtcdCluster, type EtcdClusterOptions, type EtcdMember, startEtcdCluster } from './etcd.js';
export {
  type BfdTimers,
  type BgpPeer,
  FRR_FAST_BFD,
  type FrrConfig,
  type FrrDaemon,
  FrrInstance,
  type GatewayBgpOptions,
  gatewayHostConfig,
  type RouterBgpOptions,
  routerConfig,
  startFrr,
  startFrrDetached,
} from './frr.js';
export {
  createLab,
  destroyLab,
  type HostRef,
  Lab,
  type LabOptions,
  type LabStatus,
  openLab,
  SERVICE_PORTS,
  statusOf,
  sweepOrphans,
} from './lab.js';
export {
  DEFAULT_NFS,
  ganeshaConfig,
  type MountdPorts,
  mountdPorts,
  type NfsServer,
  type NfsSpec,
} from './nfs.js';
export { type HostRole, type LabHost, type LabPlan, labPrefix, makePlan, NAME_PREFIX } from './plan.js';
export {
  buildRouter,
  frrConfigs,
  frrDirOf,
  type RouterGateway,
  type RouterLayout,
  routerLayout,
} from './router.js';
export { type Daemon, listening, nginxConfig } from './services.js';
export { type LabState, RUN_ROOT, readState, runDirOf } from './state.js';
export { alive, destroyByPrefix, listNamespaces, pidsIn, stopPids } from './teardown.js';
