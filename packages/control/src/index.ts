/**
 * @onehost/control: the gRPC control plane. `startControlServer` serves Membership, Exports, Switch,
 * health and reflection over mutual TLS; `Membership` and `ExportsRegistry` are the domain the
 * gateway subscribes to; `connect*` are the typed clients for the agent and onehostctl.
 */
export {
  type ClusterCa,
  type CreateCaOptions,
  createClusterCa,
  type IssuedCertificate,
  type IssueOptions,
  identityOfCertificate,
  issueCertificate,
} from './auth/certificates.js';
export { CERT_ORGANIZATION, type Identity } from './auth/roles.js';
// the clients, the roles and the TLS files: also alone as @onehost/control/client
export * from './client-entry.js';
export { type Clock, systemClock, type Timer } from './clock.js';
export { type ClusterConfig, checkClusterConfig } from './cluster-config.js';
export { ControlError, invalidArgument, type StatusName } from './control-error.js';
export {
  type ExportsChange,
  type ExportsInput,
  type ExportsListener,
  ExportsRegistry,
  type ExportsRegistryOptions,
} from './exports-registry.js';
export { buildFlowPacket, type FlowSpec, tcpFlagBits } from './flow-packet.js';
export { followStore } from './follow-store.js';
export {
  type Announcer,
  EtcdGatewayRegistry,
  type EtcdGatewayRegistryOptions,
  type GatewayEntry,
  type GatewayHealth,
  type GatewayList,
  type GatewayRecord,
  type GatewayRegistry,
  type GatewayRegistryOptions,
  type GatewaySelf,
  LocalGatewayRegistry,
  NO_ANNOUNCER,
  readGatewayRecord,
  STALE_AFTER_MS,
  staleness,
} from './gateway-registry.js';
export {
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  type JoinInput,
  type MemberChange,
  type MemberChangeKind,
  type MemberListener,
  Membership,
  type MembershipOptions,
} from './membership.js';
export { allocatePortBlock, DEFAULT_BLOCK_SIZE, DEFAULT_PORT_RANGE, type PortRange } from './port-blocks.js';
export { type RpcCount, RpcCounters } from './rpc-counters.js';
export {
  type ControlServer,
  type ControlServerOptions,
  type ServerTls,
  startControlServer,
} from './server.js';
export { writeFileAtomic } from './store/atomic-write.js';
export type {
  Allocation,
  AllocationRules,
  ControlStore,
  NewMember,
  StoreEvent,
} from './store/control-store.js';
export { ETCD_PREFIX } from './store/etcd-layout.js';
export { EtcdStore, EtcdStoreError, type EtcdStoreOptions } from './store/etcd-store.js';
export { StoreFileError } from './store/file-format.js';
export { FileStore } from './store/file-store.js';
export type {
  ExportsRecord,
  HandleLayoutRecord,
  HealthRecord,
  MemberRecord,
  MemberStateName,
  StoreContents,
} from './store/records.js';
export type {
  ConnectionFilter,
  ConnectionInfo,
  ExplainedDecision,
  ExplainedPacket,
  ExplainResult,
  GatewayBackend,
  GatewayReload,
  GatewayStatus,
  Protocol,
  SpliceOffsets,
  SwitchBackend,
  SwitchEntryInfo,
} from './switch-backend.js';
