export {
  type Chain,
  compileState,
  type EntryPath,
  entryName,
  type Family,
  type FastPathLayout,
  FLOW_KEY_MOD,
  FLOW_KEY_SEEDS,
  flowMapName,
  type GuardRates,
  type KernelState,
  LOCAL_SLOT,
  localMark,
  markOf,
  type NodeEndpoint,
  nextRing,
  nftFamily,
  type StaticSet,
  synMapName,
  TUN_CLASSES,
  type TunClass,
} from './compile.js';
export { explainPath, type KernelView, kernelFlow, key6, packetsOf, stateOfTimeout } from './explain.js';
export {
  FastPath,
  type FastPathOptions,
  type FastPathStats,
  type KernelCounter,
  nftFailure,
} from './fastpath.js';
export {
  type ExistingObjects,
  type IpChanges,
  ipChanges,
  localRuleArgs,
  renderTransaction,
} from './render.js';
