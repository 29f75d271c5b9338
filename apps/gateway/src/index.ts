export { GatewaySwitch } from './backend.js';
export { buildSwitchDoc, GATEWAY_NODE_ID, namesInEntries, type SwitchDoc } from './cluster-doc.js';
export { ConfigError, type GatewayConfig, loadGatewayConfig, parseGatewayConfig } from './config.js';
export { Datapath, type DatapathOptions, type NodeEndpoint, type SplicePath } from './datapath.js';
export { DATAPATH_DROP, DATAPATH_DROPS, type DatapathDrop } from './drops.js';
export { type Gateway, startGateway } from './gateway.js';
export { applyGatewayHost, type GatewayHostConfig, restoreGatewayHost } from './host/gateway-host.js';
export { type BatchHandler, type PacketSink, type PacketSource, TunSource } from './packet-io.js';
export { SpliceWing, type SpliceWingOptions } from './splice/wing.js';
