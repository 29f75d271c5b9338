export { clusterAddressText, isIpv6 } from './config/address-text.js';
export {
  type ConfigIssue,
  type ConfigPath,
  Fields,
  formatIssue,
  formatPath,
  Issues,
} from './config/fields.js';
export { MAX_CONFIG_BYTES, parseConfigText } from './config/load.js';
export type * from './config/types.js';
export { GANESHA_HANDLE, type ValidationResult, validateConfig } from './config/validate.js';
export {
  EVENT,
  eventName,
  FUNCTION_SLOT,
  FUNCTION_SLOT_BASE,
  functionSlotName,
  SwitchCounters,
} from './counters.js';
export { type Decision, DecisionOut, KIND, type KindCode, NO_PORT } from './decision.js';
export { allDropReasons, DROP, dropReasonName } from './drop-reason.js';
export {
  decideByDestinationPort,
  decideDelivery,
  decideForNonClusterAddress,
  decideLaterFragment,
  decideNonPortProtocol,
  decideUnmatchedPort,
  routeInbound,
} from './flow.js';
export { type FlowQuestion, flowPacket } from './flow-packet.js';
export {
  type ConnectionConfig,
  connectionSpec,
  DEFAULT_CONNECTION_TIMEOUTS,
  POLICIES,
  type Policy,
} from './functions/connection.js';
export { fixedSpec } from './functions/fixed.js';
export { mountSpec } from './functions/mount.js';
export { nfsSpec } from './functions/nfs.js';
export { portBlockSpec } from './functions/port-block.js';
export { portmapSpec } from './functions/portmap.js';
export { defaultRegistry, FunctionRegistry } from './functions/registry.js';
export type {
  RoutingDeps,
  RoutingFunction,
  RoutingFunctionSpec,
  ValidationContext,
} from './functions/types.js';
export { udpFlowSpec } from './functions/udp-flow.js';
export {
  FLOW_SEED,
  flowHash,
  fmix32,
  hash3,
  hashWords,
  jhashAddr6Port,
  jhashAddrPort,
  jhashBytes,
  maglevSlot,
  maglevSlot6,
  reciprocalScale,
} from './hash.js';
export {
  FLOW_OP,
  FlowLog,
  type KernelMaglev,
  type KernelPlan,
  type KernelTimeouts,
} from './kernel-plan.js';
export {
  type ExplainOptions,
  type Explanation,
  type FlowFilter,
  type FlowRow,
  MessageSwitch,
  type MessageSwitchOptions,
  type PacketDescription,
} from './message-switch.js';
export { NODE_STATE, NodeDirectory, type NodeInfo } from './node-directory.js';
export { PacketContext } from './packet-context.js';
export { entryKey, type TableEntry, TableSnapshot } from './snapshot.js';
export { type ExportRow, ExportTable } from './tables/export-table.js';
export { FLOW, type FlowEntry, FlowTable, flowStateName } from './tables/flow-table.js';
export { FragmentTable } from './tables/fragment-table.js';
export { buildMaglev, DEFAULT_MAGLEV_SIZE, isPrime, type MaglevBackend } from './tables/maglev.js';
export { type PortBlock, PortBlocks } from './tables/port-blocks.js';
export { SlotTable } from './tables/slot-table.js';
export { Trace } from './trace.js';
