import type { Fields } from '../config/fields.js';
import type { NodeDirectory } from '../node-directory.js';
import type { ValidationContext } from './types.js';

/**
 * readNodeNames reads an optional `nodes:` list of node names (the nodes that run the service); undefined
 * means every node. Unknown or repeated names are recorded as issues.
 */
export function readNodeNames(f: Fields, ctx: ValidationContext): string[] | undefined {
  if (!f.has('nodes')) {
    f.raw('nodes');
    return undefined;
  }
  const items = f.list('nodes');
  const out: string[] = [];
  items.forEach((v, i) => {
    const at = [...f.path('nodes'), i];
    if (typeof v !== 'string' || !ctx.nodeNames.has(v))
      f.issues.add(at, `must name a node, got ${JSON.stringify(v)}`);
    else if (out.includes(v)) f.issues.add(at, `node ${v} listed twice`);
    else out.push(v);
  });
  if (items.length === 0) f.error('nodes', 'must list at least one node');
  return out;
}

/** candidateIds resolves names (or every node) to ids in the listed order. */
export function candidateIds(names: readonly string[] | undefined, nodes: NodeDirectory): Int32Array {
  const list =
    names === undefined ? nodes.nodes : names.map((n) => nodes.named(n)).filter((n) => n !== undefined);
  return Int32Array.from(list.map((n) => n.id));
}

/** activeBackends lists the candidates that take new flows, as Maglev backends. */
export function activeBackends(ids: Int32Array, nodes: NodeDirectory): { id: number; name: string }[] {
  const out: { id: number; name: string }[] = [];
  for (const id of ids) if (nodes.isActive(id)) out.push({ id, name: nodes.nameOf(id) });
  return out;
}
