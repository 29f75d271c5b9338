import { tryParseIpv4 } from '@onehost/wire';
import type { ExportsRecord, MemberRecord, StoreContents } from './records.js';

/** STORE_FORMAT names the embedded store's file format; STORE_VERSION is its version. */
export const STORE_FORMAT = 'onehost-control-store';
export const STORE_VERSION = 1;

/** serializeStore renders the contents as the store file's JSON text (stable order, by id and name). */
export function serializeStore(c: StoreContents): string {
  const members = [...c.members].sort((a, b) => a.id - b.id);
  const exports = [...c.exports].sort((a, b) =>
    a.nodeName < b.nodeName ? -1 : a.nodeName > b.nodeName ? 1 : 0,
  );
  return `${JSON.stringify(
    { format: STORE_FORMAT, version: STORE_VERSION, nextNodeId: c.nextNodeId, members, exports },
    null,
    2,
  )}\n`;
}

/** StoreFileError says what is wrong with a store file, and where ("members[2].block.lo: …"). */
export class StoreFileError extends Error {
  constructor(file: string, where: string, problem: string) {
    super(`${file}: ${where}: ${problem}`);
    this.name = 'StoreFileError';
  }
}

type Obj = Record<string, unknown>;

/**
 * parseStore reads a store file's text. Throws StoreFileError naming the first bad field: a store we
 * cannot read must stop the gateway rather than hand out ids and blocks twice.
 */
export function parseStore(file: string, text: string): StoreContents {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new StoreFileError(file, '(document)', `not JSON: ${(err as Error).message}`);
  }
  const r = new Reader(file);
  const top = r.obj(doc, '(document)');
  if (top.format !== STORE_FORMAT) throw new StoreFileError(file, 'format', `expected "${STORE_FORMAT}"`);
  if (top.version !== STORE_VERSION) throw new StoreFileError(file, 'version', `expected ${STORE_VERSION}`);
  const members = r.arr(top.members, 'members').map((m, i) => r.member(m, `members[${i}]`));
  const exports = r.arr(top.exports, 'exports').map((e, i) => r.exports(e, `exports[${i}]`));
  let nextNodeId = r.int(top.nextNodeId, 'nextNodeId', 1, 0xffff + 1);
  const names = new Set<string>();
  const ids = new Set<number>();
  members.forEach((m, i) => {
    if (names.has(m.name)) throw new StoreFileError(file, `members[${i}].name`, `duplicate ${m.name}`);
    if (ids.has(m.id)) throw new StoreFileError(file, `members[${i}].id`, `duplicate ${m.id}`);
    names.add(m.name);
    ids.add(m.id);
    nextNodeId = Math.max(nextNodeId, m.id + 1);
  });
  return { members, exports, nextNodeId };
}

/** readMemberRecord checks one member record (a shared store's value); throws StoreFileError naming the field. */
export function readMemberRecord(source: string, at: string, v: unknown): MemberRecord {
  return new Reader(source).member(v, at);
}

/** readExportsRecord checks one exports record; throws StoreFileError naming the field. */
export function readExportsRecord(source: string, at: string, v: unknown): ExportsRecord {
  return new Reader(source).exports(v, at);
}

class Reader {
  constructor(private readonly file: string) {}

  fail(where: string, problem: string): never {
    throw new StoreFileError(this.file, where, problem);
  }

  obj(v: unknown, where: string): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(where, 'not an object');
    return v as Obj;
  }

  arr(v: unknown, where: string): unknown[] {
    if (!Array.isArray(v)) this.fail(where, 'not an array');
    return v;
  }

  str(v: unknown, where: string): string {
    if (typeof v !== 'string') this.fail(where, 'not a string');
    return v;
  }

  bool(v: unknown, where: string): boolean {
    if (typeof v !== 'boolean') this.fail(where, 'not a boolean');
    return v;
  }

  int(v: unknown, where: string, min: number, max: number): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      this.fail(where, `not an integer in ${min}-${max}`);
    return v;
  }

  member(v: unknown, at: string): MemberRecord {
    const o = this.obj(v, at);
    const block = this.obj(o.block, `${at}.block`);
    const lo = this.int(block.lo, `${at}.block.lo`, 1, 65535);
    const hi = this.int(block.hi, `${at}.block.hi`, lo, 65535);
    const internalAddress = this.str(o.internalAddress, `${at}.internalAddress`);
    if (tryParseIpv4(internalAddress) < 0) this.fail(`${at}.internalAddress`, 'not an IPv4 address');
    const state = this.str(o.state, `${at}.state`);
    if (state !== 'active' && state !== 'draining' && state !== 'unreachable' && state !== 'down')
      this.fail(`${at}.state`, 'not active, draining, unreachable or down');
    return {
      name: this.str(o.name, `${at}.name`),
      id: this.int(o.id, `${at}.id`, 1, 0xffff),
      block: { lo, hi },
      internalAddress,
      vxlanMac: this.str(o.vxlanMac, `${at}.vxlanMac`),
      capabilities: this.arr(o.capabilities, `${at}.capabilities`).map((c, i) =>
        this.str(c, `${at}.capabilities[${i}]`),
      ),
      drained: this.bool(o.drained, `${at}.drained`),
      state,
      lastSeenUnixMs: this.int(o.lastSeenUnixMs, `${at}.lastSeenUnixMs`, 0, Number.MAX_SAFE_INTEGER),
      downReason: this.str(o.downReason, `${at}.downReason`),
    };
  }

  exports(v: unknown, at: string): ExportsRecord {
    const o = this.obj(v, at);
    const ports = this.obj(o.mountPorts, `${at}.mountPorts`);
    const mountPorts: ExportsRecord['mountPorts'] = {};
    if (ports.tcp !== undefined) mountPorts.tcp = this.int(ports.tcp, `${at}.mountPorts.tcp`, 1, 65535);
    if (ports.udp !== undefined) mountPorts.udp = this.int(ports.udp, `${at}.mountPorts.udp`, 1, 65535);
    const layout = this.obj(o.handleLayout, `${at}.handleLayout`);
    const endian = this.str(layout.endian, `${at}.handleLayout.endian`);
    if (endian !== 'big' && endian !== 'little') this.fail(`${at}.handleLayout.endian`, 'not big or little');
    return {
      nodeName: this.str(o.nodeName, `${at}.nodeName`),
      mountPorts,
      exports: this.arr(o.exports, `${at}.exports`).map((e, i) => {
        const x = this.obj(e, `${at}.exports[${i}]`);
        return {
          path: this.str(x.path, `${at}.exports[${i}].path`),
          exportId: this.int(x.exportId, `${at}.exports[${i}].exportId`, 0, 0xffffffff),
        };
      }),
      handleLayout: {
        offset: this.int(layout.offset, `${at}.handleLayout.offset`, 0, 63),
        length: this.int(layout.length, `${at}.handleLayout.length`, 1, 4),
        endian,
      },
      registeredUnixMs: this.int(o.registeredUnixMs, `${at}.registeredUnixMs`, 0, Number.MAX_SAFE_INTEGER),
    };
  }
}
