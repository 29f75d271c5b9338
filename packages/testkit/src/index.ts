export { Lab, Netns, ROOT, sweepStaleNamespaces, type VethOptions, type VethPair } from './lab.js';
export { LabProcess } from './process.js';
export { requireRoot } from './require-root.js';
export { type RunOptions, type RunResult, run, runInNetns } from './run.js';
export { type WaitForOptions, waitFor } from './wait-for.js';
