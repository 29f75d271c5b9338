/**
 * @onehost/control/client: the typed clients and what a caller needs around them, without the servers,
 * the stores and the certificate authority (onehostctl starts in a third of the time without them).
 */
export { ROLES, type Role } from './auth/roles.js';
export { readTlsFiles, type TlsFiles, type TlsPems } from './auth/tls-files.js';
export {
  type ClientTls,
  type ConnectOptions,
  checkHealth,
  connectExports,
  connectGateway,
  connectMembership,
  connectSwitch,
  ExportsConnection,
  GatewayConnection,
  type HealthStatus,
  MembershipConnection,
  SwitchConnection,
} from './client.js';
export {
  describeError,
  describeServiceError,
  isFinalRefusal,
  isServiceError,
  statusName,
} from './grpc-status.js';
