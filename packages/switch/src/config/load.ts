import { isMap, isScalar, LineCounter, parseDocument } from 'yaml';
import type { FunctionRegistry } from '../functions/registry.js';
import { defaultRegistry } from '../functions/registry.js';
import type { ConfigIssue } from './fields.js';
import { type ValidationResult, validateConfig } from './validate.js';

/** MAX_CONFIG_BYTES caps the text accepted (a table, not a data set). */
export const MAX_CONFIG_BYTES = 4 << 20;

/**
 * parseConfigText parses YAML text and validates it; issues carry the line and column of the field
 * they name (or of its nearest parent present in the text). Pure: the caller reads the file. Never
 * throws: YAML syntax errors are issues too.
 */
export function parseConfigText(
  text: string,
  registry: FunctionRegistry = defaultRegistry(),
): ValidationResult {
  if (text.length > MAX_CONFIG_BYTES) {
    return {
      ok: false,
      issues: [{ path: '(root)', message: `config is larger than ${MAX_CONFIG_BYTES} bytes`, at: [] }],
    };
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      issues: doc.errors.map((e) => {
        const pos = lines.linePos(e.pos[0]);
        return {
          path: '(yaml)',
          message: e.message.split('\n')[0]!,
          line: pos.line,
          column: pos.col,
          at: [],
        };
      }),
    };
  }
  const result = validateConfig(doc.toJS({ maxAliasCount: 100 }), registry);
  if (!result.ok) for (const i of result.issues) locate(doc, lines, i);
  return result;
}

/** locate fills line/column from the deepest node of the issue's path present in the document. */
function locate(doc: ReturnType<typeof parseDocument>, lines: LineCounter, issue: ConfigIssue): void {
  for (let n = issue.at.length; n >= 0; n--) {
    const path = issue.at.slice(0, n);
    let range: readonly number[] | null | undefined;
    if (issue.message === 'unknown field' && n === issue.at.length) {
      // Point at the key itself.
      const parent = n === 0 ? doc.contents : doc.getIn(path.slice(0, -1), true);
      if (isMap(parent)) {
        const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === path[path.length - 1]);
        if (pair && isScalar(pair.key)) range = pair.key.range;
      }
    } else {
      const node = path.length === 0 ? doc.contents : doc.getIn(path, true);
      if (node && typeof node === 'object' && 'range' in node)
        range = (node as { range?: readonly number[] | null }).range;
    }
    if (range) {
      const pos = lines.linePos(range[0]!);
      issue.line = pos.line;
      issue.column = pos.col;
      return;
    }
  }
}
