export { FlowMap } from './flow-map.js';
export { FlowMap6, fold16, same16 } from './flow-map6.js';
export * from './message.js';
export {
  rewrite32,
  type SegmentSpec,
  setWindow,
  shiftClientSegment,
  shiftSack,
  tsOption,
  writeSegment,
  wscaleOption,
} from './segment.js';
export { TcpSegmentView } from './segment-view.js';
export {
  type BoundFlow,
  SPLICE_EVENTS,
  type SpliceEvent,
  Splicer,
  type SplicerIo,
  type SplicerOptions,
} from './splicer.js';
