import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/** One export as MOUNT clients name it, with the id the server writes into its file handles. */
export interface NodeExport {
  path: string;
  exportId: number;
}

/** GaneshaConfigError names the file and line of what could not be read. */
export class GaneshaConfigError extends Error {
  override name = 'GaneshaConfigError';
}

/** A parsed block: `NAME { key = value, value; SUB { … } }`; keys are case-insensitive in ganesha. */
interface Block {
  name: string;
  line: number;
  params: Map<string, string[]>;
  blocks: Block[];
}

type Token = { t: 'word' | '{' | '}' | '=' | ';' | ','; v: string; line: number };

function tokenize(text: string, file: string, firstLine: number): Token[] {
  const out: Token[] = [];
  let line = firstLine;
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === '\n') {
      line++;
      i++;
    } else if (ch === ' ' || ch === '\t' || ch === '\r') i++;
    else if (ch === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (ch === '{' || ch === '}' || ch === '=' || ch === ';' || ch === ',') {
      out.push({ t: ch, v: ch, line });
      i++;
    } else if (ch === '"' || ch === "'") {
      const end = text.indexOf(ch, i + 1);
      if (end < 0) throw new GaneshaConfigError(`${file}:${line}: unterminated string`);
      const v = text.slice(i + 1, end);
      out.push({ t: 'word', v, line });
      line += v.split('\n').length - 1;
      i = end + 1;
    } else {
      let j = i;
      while (j < text.length && !/[\s{}=;,#"']/.test(text[j]!)) j++;
      out.push({ t: 'word', v: text.slice(i, j), line });
      i = j;
    }
  }
  return out;
}

/** parseBlocks reads a sequence of blocks and parameters until `}` or the end. */
function parseBody(toks: Token[], pos: { i: number }, file: string, top: boolean): Block {
  const body: Block = { name: '', line: toks[pos.i]?.line ?? 0, params: new Map(), blocks: [] };
  for (;;) {
    const tok = toks[pos.i];
    if (tok === undefined) {
      if (top) return body;
      throw new GaneshaConfigError(`${file}: a block is not closed before the end of the file`);
    }
    if (tok.t === '}') {
      if (top) throw new GaneshaConfigError(`${file}:${tok.line}: "}" without a block`);
      pos.i++;
      return body;
    }
    if (tok.t === ';') {
      pos.i++;
      continue;
    }
    if (tok.t !== 'word') throw new GaneshaConfigError(`${file}:${tok.line}: unexpected "${tok.v}"`);
    const next = toks[pos.i + 1];
    if (next?.t === '{') {
      pos.i += 2;
      const sub = parseBody(toks, pos, file, false);
      sub.name = tok.v;
      sub.line = tok.line;
      body.blocks.push(sub);
    } else if (next?.t === '=') {
      pos.i += 2;
      const values: string[] = [];
      for (;;) {
        const v = toks[pos.i];
        if (v === undefined || v.t === '}' || v.t === ';') break;
        if (v.t === 'word') values.push(v.v);
        else if (v.t !== ',') throw new GaneshaConfigError(`${file}:${v.line}: unexpected "${v.v}"`);
        pos.i++;
      }
      body.params.set(tok.v.toLowerCase(), values);
    } else {
      throw new GaneshaConfigError(`${file}:${tok.line}: "${tok.v}" is neither a block nor a parameter`);
    }
  }
}

const MAX_INCLUDE_DEPTH = 8;

/** readBlocks reads a config file's top-level blocks, following `%include "file"` lines. */
async function readBlocks(file: string, depth = 0): Promise<Block[]> {
  if (depth > MAX_INCLUDE_DEPTH)
    throw new GaneshaConfigError(`${file}: includes nested deeper than ${MAX_INCLUDE_DEPTH}`);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new GaneshaConfigError(`${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const blocks: Block[] = [];
  // `%include "file"` stands on a line of its own, between blocks.
  const chunks = text.split(/^[ \t]*%include[ \t]+(.+?)[ \t]*$/gm);
  let line = 1;
  for (let k = 0; k < chunks.length; k++) {
    if (k % 2 === 1) {
      const name = chunks[k]!.replace(/^["']|["']$/g, '');
      blocks.push(...(await readBlocks(resolve(dirname(file), name), depth + 1)));
      continue;
    }
    blocks.push(...parseBody(tokenize(chunks[k]!, file, line), { i: 0 }, file, true).blocks);
    line += chunks[k]!.split('\n').length - 1;
  }
  return blocks;
}

function param(b: Block | undefined, key: string): string[] | undefined {
  return b?.params.get(key.toLowerCase());
}

function speaksV3(protocols: string[] | undefined): boolean {
  if (protocols === undefined) return true;
  return protocols.some((p) => /^(3|v3|nfs3|nfsv3)$/i.test(p));
}

function isTrue(v: string[] | undefined): boolean {
  return v !== undefined && /^(true|yes|on|1)$/i.test(v[0] ?? '');
}

/**
 * ganeshaExports reads the NFSv3 exports from an nfs-ganesha configuration: each EXPORT block's
 * Export_Id and the path MOUNT clients give (Path, or Pseudo when NFS_CORE_PARAM sets
 * Mount_Path_Pseudo). Blocks whose Protocols (or EXPORT_DEFAULTS') leave out NFSv3 are skipped, and so
 * is everything when NFS_CORE_PARAM's Protocols do. Throws GaneshaConfigError naming the file and line
 * of what it cannot read, or of an EXPORT without a usable Export_Id or path.
 */
export async function ganeshaExports(file: string): Promise<NodeExport[]> {
  const blocks = await readBlocks(file);
  const find = (name: string) => blocks.find((b) => b.name.toLowerCase() === name.toLowerCase());
  const core = find('NFS_CORE_PARAM');
  if (!speaksV3(param(core, 'Protocols'))) return [];
  const pseudo = isTrue(param(core, 'Mount_Path_Pseudo'));
  const defaults = find('EXPORT_DEFAULTS');
  const out: NodeExport[] = [];
  for (const b of blocks) {
    if (b.name.toLowerCase() !== 'export') continue;
    if (!speaksV3(param(b, 'Protocols') ?? param(defaults, 'Protocols'))) continue;
    const id = param(b, 'Export_Id')?.[0];
    const exportId = id !== undefined && /^\d+$/.test(id) ? Number(id) : Number.NaN;
    if (!Number.isSafeInteger(exportId))
      throw new GaneshaConfigError(`${file}:${b.line}: EXPORT without a numeric Export_Id`);
    const path = (pseudo ? param(b, 'Pseudo') : undefined)?.[0] ?? param(b, 'Path')?.[0];
    if (path === undefined || !path.startsWith('/'))
      throw new GaneshaConfigError(`${file}:${b.line}: EXPORT ${exportId} has no absolute Path`);
    out.push({ path: path.length > 1 ? path.replace(/\/+$/, '') : path, exportId });
  }
  return out;
}
