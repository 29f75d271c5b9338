export {
  APPLY_STEPS,
  type AppliedNode,
  type ApplyOptions,
  type ApplyStep,
  applyNodeConfig,
  missingPieces,
  type RestoreReport,
  restore,
} from './apply.js';
export {
  type ClusterNetwork,
  ConfigError,
  type MountPortRestore,
  type NodeConfig,
  type PortSplit,
  type ResolvedConfig,
  resolveConfig,
  splitPortBlock,
  stableMac,
  type VxlanConfig,
} from './config.js';
export { AgentDaemon, AgentFailure, type DaemonOptions } from './daemon.js';
export { type LocalFacts, nodeConfigFromJoin, sameConfig, vxlanMacOf } from './join-config.js';
export { type Change, type Journal, readJournal } from './journal.js';
export { NFT_FAMILY, NFT_TABLE, nftRuleset } from './nft.js';
export { ROUTE_PROTO } from './routes.js';
