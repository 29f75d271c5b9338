export {
  BPF_OBJECT,
  KernelSplice,
  type KernelSpliceCounters,
  type KernelSpliceOptions,
  type SpliceSide,
  TC_PREF,
} from './kernel-splice.js';
export {
  decodeGatewayFlow,
  decodeNodeFlow,
  encodeGatewayKey,
  encodeGatewayValue,
  encodeNodeKey,
  encodeNodeValue,
  type GatewayFlow,
  GW_KEY_SIZE,
  GW_VALUE_SIZE,
  NODE_KEY_SIZE,
  NODE_VALUE_SIZE,
  type NodeFlow,
  STAT,
} from './maps.js';
