#!/usr/bin/env node
// test-summary.mjs: add up the vitest JSON reports that `scripts/test` asked every package to write and
// print one closing line, "tests: N passed, N failed, N skipped". Exits 1 when a report is missing.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
let passed = 0;
let failed = 0;
let skipped = 0;
let missing = 0;
for (const group of ['packages', 'apps', '.']) {
  const dir = join(root, group);
  const names = group === '.' ? ['test'] : existsSync(dir) ? readdirSync(dir) : [];
  for (const name of names) {
    const pkg = join(dir, name, 'package.json');
    if (!existsSync(pkg) || !JSON.parse(readFileSync(pkg, 'utf8')).scripts?.test) continue;
    const results = join(dir, name, '.results');
    if (!existsSync(join(results, 'vitest.json'))) {
      console.error(`test-summary: no report from ${group}/${name}`);
      missing++;
      continue;
    }
    // vitest.json, and one more per extra run of a package (the e2e suites in each data path mode)
    for (const f of readdirSync(results).filter((x) => /^vitest(-[a-z]+)?\.json$/.test(x))) {
      const r = JSON.parse(readFileSync(join(results, f), 'utf8'));
      passed += r.numPassedTests;
      failed += r.numFailedTests;
      skipped += r.numPendingTests + r.numTodoTests;
    }
  }
}
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || missing > 0 ? 1 : 0);
