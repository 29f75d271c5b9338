export { type Change, type Journal, readJournal } from '@onehost/kernel';
export {
  APPLY_STEPS,
  type AppliedNode,
  type ApplyOptions,
  type ApplyStep,
  applyNodeConfig,
  missingPieces,
  type RestoreReport,
  rerouteVia,
  restore,
  updateMountPorts,
  updateNftables,
} from './apply.js';
export {
  type ClusterNetwork,
  ConfigError,
  type MountPortRestore,
  type NodeConfig,
  type PortSplit,
  type ResolvedConfig,
  resolveConfig,
  type SpliceConfig,
  splitPortBlock,
  stableMac,
  type VxlanConfig,
} from './config.js';
export { AgentDaemon, AgentFailure, type DaemonOptions } from './daemon.js';
export { GaneshaConfigError, ganeshaExports, type NodeExport } from './ganesha-config.js';
export {
  type LocalFacts,
  nodeConfigFromJoin,
  sameConfig,
  vxlanMacOf,
  withMountPorts,
  withSpliceCapture,
} from './join-config.js';
export {
  GANESHA_LAYOUT,
  type HandleLayout,
  type MountOptions,
  MountRegistrar,
  type MountRegistrarOptions,
  restoresFor,
} from './mount-registrar.js';
export {
  BYPASS_MARK,
  NFT_FAMILY,
  NFT_FAMILY6,
  NFT_TABLE,
  nftRuleset,
  nftRuleset6,
  REROUTE_MARK,
  SPLICE_MARK,
} from './nft.js';
export { ROUTE_PROTO } from './routes.js';
export { getport, type MountdPorts, mountdPorts, type RpcbindOptions } from './rpcbind.js';
export {
  SPLICE_PORT,
  SPLICE_RULE_PRIORITY,
  SPLICE_TABLE,
  SPLICE_TUN,
  SpliceIo,
  type SpliceIoHandlers,
  type SpliceIoOptions,
  type SpliceIoStats,
} from './splice/splice-io.js';
