export { BPF_UPDATE, BpfMap } from './bpf-map.js';
export { CommandError, type CommandOptions, runCommand } from './command.js';
export {
  countRules,
  dstKey,
  Host,
  type IpRoute,
  type IpRule,
  ip,
  ipJson,
  isMarkRule,
  localHost,
  type MarkRule,
  nft,
  pidAlive,
  readSysctl,
  routeArgs,
  ruleArgs,
  tableName,
  writeSysctl,
} from './host.js';
export {
  type Change,
  type Journal,
  JournalFile,
  type RestoreReport,
  readJournal,
  removeJournal,
  restoreJournal,
  undoChange,
} from './journal.js';
export { type ApplyResult, FlowBatch, type FlowElement, NftContext, NftFlows } from './nft-flows.js';
