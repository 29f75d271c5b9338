export {
  BPF_OBJECT,
  KernelSplice,
  type KernelSpliceCounters,
  type KernelSpliceOptions,
  type SpliceSide,
  TC_PREF,
} from './kernel-splice.js';
// the maps' layout: their encoders are the addon's and the tests' contract with bpf/splice.bpf.c
export * from './maps.js';
