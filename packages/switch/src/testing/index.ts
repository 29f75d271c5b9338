export { configFrom, EXAMPLE_YAML } from './example-config.js';
export * from './packet-builder.js';
