export {
  type Chain,
  compileState,
  type EntryPath,
  entryName,
  type FastPathLayout,
  flowMapName,
  type GuardRates,
  type KernelState,
  LOCAL_SLOT,
  localMark,
  markOf,
  type NodeEndpoint,
  nextRing,
  type StaticSet,
  synMapName,
  TUN_CLASSES,
  type TunClass,
} from './compile.js';
export { explainPath, type KernelView, kernelFlow, packetsOf, stateOfTimeout } from './explain.js';
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
