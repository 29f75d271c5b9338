#!/usr/bin/env node
// test-summary.mjs: add up the vitest JSON reports that `scripts/test` asked every package to write and
// print one closing line, "tests: N passed, N failed, N skipped", after the failed tests by name with the
// start of their error (CI shows the end of the output; the failures must be there). Exits 1 when a
// report is missing or a test failed.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';

const root = new URL('..', import.meta.url).pathname;
let passed = 0;
let failed = 0;
let skipped = 0;
let missing = 0;
const failures = [];
const firstLines = (t) =>
  // the reports keep the terminal colours of the messages
  stripVTControlCharacters(t)
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.includes('node_modules') && !l.includes('<anonymous>'))
    .slice(0, 4)
    .map((l) => `      ${l.trim().slice(0, 240)}`)
    .join('\n');
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
      for (const file of r.testResults ?? []) {
        const where = `${group === '.' ? '' : `${group}/`}${name} [${f}] ${file.name.slice(join(dir, name).length + 1)}`;
        const bad = (file.assertionResults ?? []).filter((a) => a.status === 'failed');
        for (const a of bad)
          failures.push(`  ${where} > ${a.fullName}\n${firstLines((a.failureMessages ?? []).join('\n'))}`);
        // a file that failed outside any test (its hooks, an import) has no failed assertion
        if (file.status === 'failed' && bad.length === 0)
          failures.push(`  ${where}\n${firstLines(file.message ?? '')}`);
      }
    }
  }
}
if (failures.length > 0) console.log(`failed:\n${failures.join('\n')}`);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || missing > 0 ? 1 : 0);
