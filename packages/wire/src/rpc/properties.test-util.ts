// Property checks shared by rpc.property.test.ts (CI, ≥ 100k cases each) and rpc.fuzz.ts (≥ 10M in all):
// bind never throws, and after OK every getter and every offset a view reports stays inside the bound
// range. Reads go through `guarded`, which throws on any index outside the range.
import fc from 'fast-check';
import { put32 } from '../bytes.js';
import { OK } from '../errors.js';
import { guarded } from '../testing/fixtures.js';
import { MAX_AUTH_BYTES, RpcCallView } from './call.js';
import { fixtureNames, loadRpc } from './fixtures.test-util.js';
import { decodeExportReply, decodeMntReply, MNTPATHLEN, MntArgsView } from './mount.js';
import { NFS3_FHSIZE, Nfs3HandleView } from './nfs3.js';
import { decodeDumpReply, decodeGetportReply, PMAP_MAPPING_SIZE, PmapMappingView } from './pmap.js';
import {
  DEFAULT_MAX_RECORD_SIZE,
  RECORD_TRUNCATED,
  RecordAssembler,
  RecordView,
  writeRecordMark,
} from './record.js';
import { RpcReplyView } from './reply.js';
import { XdrReader } from './xdr.js';

function fail(msg: string): never {
  throw new Error(msg);
}

/** inside checks that [start, start+length) lies within [lo, hi). */
function inside(what: string, start: number, length: number, lo: number, hi: number): void {
  if (
    !(
      Number.isInteger(start) &&
      Number.isInteger(length) &&
      length >= 0 &&
      start >= lo &&
      start + length <= hi
    )
  ) {
    fail(`${what}: [${start}, +${length}) outside [${lo}, ${hi})`);
  }
}

/** Golden RPC messages (record marks stripped) and TCP payloads (marks kept), the mutation corpus. */
export const goldenMessages: Uint8Array[] = [];
export const goldenRecords: Uint8Array[] = [];
for (const name of fixtureNames()) {
  const f = loadRpc(name);
  goldenMessages.push(f.packet.slice(f.off, f.off + f.len));
  if (f.transport === 'tcp') goldenRecords.push(f.packet.slice(f.payloadOff, f.payloadOff + f.payloadLen));
}

const call = new RpcCallView();
const reply = new RpcReplyView();
const mnt = new MntArgsView();
const fh = new Nfs3HandleView();
const pmap = new PmapMappingView();
const record = new RecordView();
const scratch = new Uint8Array(4096);

/**
 * checkViews binds every RPC view on buf[off, off+len) through the guard and checks what they report.
 * Returns how many bound OK (so callers can see the corpus reaches past the first checks).
 */
export function checkViews(raw: Uint8Array, off: number, len: number): number {
  const end = off + len;
  const buf = guarded(raw, off, end);
  let oks = 0;

  if (call.bind(buf, off, len) === OK) {
    oks++;
    if (call.credLen > MAX_AUTH_BYTES || call.verfLen > MAX_AUTH_BYTES) fail('auth body over the cap');
    inside('cred', call.credOff, call.credLen, off, end);
    inside('verf', call.verfOff, call.verfLen, call.credOff + call.credLen, end);
    inside('args', call.argsOffset, call.argsLength, call.verfOff + call.verfLen, end);
    void (call.xid + call.rpcvers + call.prog + call.vers + call.proc + call.credFlavor + call.verfFlavor);
    // Argument views, through the procedure check and directly on the arguments.
    for (const direct of [false, true]) {
      const a = call.argsOffset;
      const n = call.argsLength;
      if ((direct ? mnt.bind(buf, a, n) : mnt.bindCall(call)) === OK) {
        oks++;
        if (mnt.pathLen > MNTPATHLEN) fail('dirpath over the cap');
        inside('dirpath', mnt.pathOff, mnt.pathLen, a, end);
        mnt.dirpath();
      }
      if ((direct ? fh.bind(buf, a, n) : fh.bindCall(call)) === OK) {
        oks++;
        if (fh.fhLen > NFS3_FHSIZE) fail('handle over the cap');
        inside('handle', fh.fhOff, fh.fhLen, a, end);
        for (let w = 0; w <= 5; w++) {
          const id = fh.exportId(w, w, (w & 1) === 1);
          if (id !== -1 && !(id >= 0 && id < 2 ** 32 && w + w <= fh.fhLen)) fail(`export id ${id}`);
        }
      }
      if ((direct ? pmap.bind(buf, a, n) : pmap.bindCall(call)) === OK) {
        oks++;
        inside('mapping', pmap.off, PMAP_MAPPING_SIZE, a, end);
        void (pmap.prog + pmap.vers + pmap.prot + pmap.port);
      }
    }
  }

  if (reply.bind(buf, off, len) === OK) {
    oks++;
    if (reply.verfLen > MAX_AUTH_BYTES) fail('reply verifier over the cap');
    inside('reply verf', reply.verfOff, reply.verfLen, off, end);
    inside('results', reply.resultsOffset, reply.resultsLength, reply.verfOff + reply.verfLen, end);
    if ((reply.acceptStat === -1) === (reply.rejectStat === -1)) fail('accepted and rejected at once');
    void (reply.xid + Number(reply.success));
  }

  if (record.bind(buf, off, len, 2048, 16) === OK) {
    oks++;
    inside('record', record.off, record.len, off, end);
    inside('first fragment', record.payloadOffset, record.firstFragmentLength, off, end);
    if (record.recordLength > 2048 || record.fragments > 16 || record.fragments < 1) fail('record caps');
    if (record.len !== record.recordLength + 4 * record.fragments) fail('record length accounting');
    if (record.copyPayload(scratch) !== record.recordLength) fail('copyPayload');
  }
  return oks;
}

/** checkDecoders runs the allocating reply decoders on a message: they must return, not throw. */
export function checkDecoders(raw: Uint8Array, off: number, len: number): void {
  const msg = raw.slice(off, off + len);
  for (const r of [
    decodeMntReply(msg),
    decodeExportReply(msg),
    decodeDumpReply(msg),
    decodeGetportReply(msg),
  ]) {
    if (typeof r.ok !== 'boolean') fail('decoder returned no verdict');
  }
}

/** Values that sit on the edges of the checks: caps, versions, program numbers, sign bits. */
const EDGES = [
  0, 1, 2, 3, 4, 5, 6, 17, 19, 24, 28, 64, 65, 111, 399, 400, 401, 1024, 1025, 2049, 100000, 100003, 100005,
  0x7fffffff, 0x80000000, 0x80000010, 0xfffffffc, 0xffffffff,
];
const word = fc.oneof(fc.constantFrom(...EDGES), fc.nat(0xffff), fc.integer({ min: 0, max: 0xffffffff }));

/** placed puts bytes at a random offset in a larger buffer with random bytes around them. */
function placed(body: Uint8Array, pre: Uint8Array, post: Uint8Array, at: number | undefined) {
  const buf = new Uint8Array(pre.length + body.length + post.length);
  buf.set(pre);
  buf.set(body, pre.length);
  buf.set(post, pre.length + body.length);
  const len = at === undefined ? body.length : at % (body.length + 1);
  return { buf, off: pre.length, len };
}
const around = fc.uint8Array({ maxLength: 6 });
/** cut: mostly whole, sometimes cut at a random point. */
const cut = fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.nat() });

/** randomInput: arbitrary bytes at a random place, maybe cut. */
export const randomInput = fc
  .tuple(fc.uint8Array({ maxLength: 160 }), around, around, cut)
  .map(([b, pre, post, at]) => placed(b, pre, post, at));

/** biased: mostly the valid value, sometimes an edge or random word. */
const biased = (valid: number) =>
  fc.oneof({ weight: 4, arbitrary: fc.constant(valid) }, { weight: 1, arbitrary: word });
/** authLen: an opaque_auth length near what the caps and padding make interesting. */
const authLen = fc.oneof(fc.constantFrom(0, 1, 3, 4, 8, 24, 399, 400, 401, 0xffffffff), fc.nat(420));

/**
 * wordInput: structured RPC messages (calls or replies, maybe record-marked) whose fields are mostly
 * valid and sometimes edge values, so that the checks past the first ones and the argument views run.
 */
export const wordInput = fc
  .tuple(
    fc.record({
      xid: word,
      mtype: fc.oneof(biased(0), fc.constant(1)),
      stat: fc.oneof(biased(2), fc.constantFrom(0, 1)),
      prog: fc.oneof(fc.constantFrom(100000, 100003, 100005), word),
      vers: fc.oneof(fc.constantFrom(1, 2, 3), word),
      proc: fc.oneof(fc.nat(23), word),
      credFlavor: fc.oneof(fc.constantFrom(0, 1, 6), word),
      credLen: authLen,
      verfLen: authLen,
      args: fc.array(fc.oneof(fc.nat(80), word), { maxLength: 24 }),
      marked: fc.boolean(),
    }),
    around,
    around,
    cut,
  )
  .map(([m, pre, post, at]) => {
    const ws = [m.xid, m.mtype, m.stat, m.prog, m.vers, m.proc, m.credFlavor, m.credLen];
    for (let i = 0; i < Math.min(m.credLen, 420); i += 4) ws.push(i);
    ws.push(0, m.verfLen);
    for (let i = 0; i < Math.min(m.verfLen, 420); i += 4) ws.push(i);
    ws.push(...m.args);
    const o = m.marked ? 4 : 0;
    const body = new Uint8Array(o + ws.length * 4);
    for (const [i, w] of ws.entries()) put32(body, o + i * 4, w);
    if (m.marked) writeRecordMark(body, 0, ws.length * 4, true);
    return placed(body, pre, post, at);
  });

/** mutatedGolden: a golden message or TCP payload with words and bytes overwritten, maybe cut. */
export const mutatedGolden = fc
  .tuple(
    fc.nat(goldenMessages.length + goldenRecords.length - 1),
    fc.array(fc.tuple(fc.nat(), word, fc.boolean()), { maxLength: 4 }),
    around,
    around,
    cut,
  )
  .map(([i, muts, pre, post, at]) => {
    const src = i < goldenMessages.length ? goldenMessages[i]! : goldenRecords[i - goldenMessages.length]!;
    const body = src.slice();
    for (const [at, w, asByte] of muts) {
      if (asByte) body[at % body.length] = w & 0xff;
      else {
        // Whole aligned words, biased to the header where the decisions are made.
        const o = (at % Math.min(body.length >> 2, at % 3 === 0 ? 64 : 20)) * 4;
        put32(body, o, w);
      }
    }
    return placed(body, pre, post, at);
  });

/** A stream of fragments, some with lying marks, cut into segments, under small caps. */
export const recordStream = fc.record({
  frags: fc.array(
    fc.record({
      len: fc.nat(40),
      last: fc.boolean(),
      lie: fc.option(fc.oneof(fc.constantFrom(0, 41, 100, 0x10000, 0x7fffffff), fc.nat(0x7fffffff)), {
        nil: undefined,
      }),
    }),
    { maxLength: 10 },
  ),
  cuts: fc.array(fc.nat(), { maxLength: 6 }),
  maxRecordSize: fc.constantFrom(0, 16, 64, 1000, DEFAULT_MAX_RECORD_SIZE),
  maxFragments: fc.constantFrom(0, 1, 3, 256),
});

/**
 * checkAssembler feeds a stream through RecordAssembler in segments and checks it against walking the
 * same bytes with RecordView: same records, same failure, buffer never past the cap or far past the input.
 */
export function checkAssembler(s: {
  frags: { len: number; last: boolean; lie: number | undefined }[];
  cuts: number[];
  maxRecordSize: number;
  maxFragments: number;
}): void {
  const total = s.frags.reduce((n, f) => n + 4 + f.len, 0);
  const stream = new Uint8Array(total);
  let p = 0;
  for (const [i, f] of s.frags.entries()) {
    writeRecordMark(stream, p, f.lie ?? f.len, f.last);
    stream.fill(i + 1, p + 4, p + 4 + f.len);
    p += 4 + f.len;
  }
  // Reference: RecordView, record after record.
  const want: string[] = [];
  let wantCode = OK;
  let consumed = 0;
  const v = new RecordView();
  while (consumed < stream.length) {
    const code = v.bind(stream, consumed, stream.length - consumed, s.maxRecordSize, s.maxFragments);
    if (code === RECORD_TRUNCATED) break;
    if (code !== OK) {
      wantCode = code;
      break;
    }
    want.push(Buffer.from(v.payload()).toString('hex'));
    consumed += v.len;
  }
  const got: string[] = [];
  const a = new RecordAssembler((b, o, n) => got.push(Buffer.from(b.slice(o, o + n)).toString('hex')), {
    maxRecordSize: s.maxRecordSize,
    maxFragments: s.maxFragments,
  });
  const at = [0, ...s.cuts.map((c) => c % (total + 1)).sort((x, y) => x - y), total];
  let code = OK;
  for (let i = 1; i < at.length && code === OK; i++) {
    const seg = stream.slice(at[i - 1], at[i]);
    code = a.push(guarded(seg, 0, seg.length));
    if (a.capacity > Math.max(0, s.maxRecordSize)) fail(`capacity ${a.capacity} over the cap`);
    if (a.capacity > Math.max(1024, 2 * at[i]!)) fail(`capacity ${a.capacity} after ${at[i]} bytes`);
  }
  if (code !== wantCode) fail(`assembler ${code}, RecordView ${wantCode}`);
  if (got.join() !== want.join()) fail('assembler and RecordView disagree on the records');
  if (code === OK && a.atBoundary !== (consumed === stream.length)) fail('boundary state');
}

/** XDR operation sequences on arbitrary bytes. */
export const xdrOps = fc.tuple(
  randomInput,
  fc.array(fc.tuple(fc.nat(6), fc.oneof(fc.constantFrom(0, 3, 4, 64, 1024), fc.nat())), { maxLength: 12 }),
);

/** checkXdr runs reads on a guarded buffer: the cursor and items stay in range; errors stick. */
export function checkXdr([{ buf: raw, off, len }, ops]: [
  { buf: Uint8Array; off: number; len: number },
  [number, number][],
]): void {
  const end = off + len;
  const r = new XdrReader().reset(guarded(raw, off, end), off, end);
  for (const [op, arg] of ops) {
    const before = r.error;
    const pos = r.pos;
    if (op === 0) r.u32();
    else if (op === 1) r.bool();
    else if (op === 2) r.u64();
    else if (op === 3) r.opaque(arg);
    else if (op === 4) r.string(arg);
    else if (op === 5) r.fixedOpaque(arg % 64);
    else r.text();
    if (before !== OK && (r.error !== before || r.pos !== pos)) fail('error not sticky');
    if (r.error === OK) {
      if (!(r.pos >= off && r.pos <= end && (r.pos - off) % 4 === 0)) fail(`pos ${r.pos}`);
      inside('item', r.itemOff, r.itemLen, off, end);
    }
  }
}

/** The properties, by name; rpc.property.test.ts and rpc.fuzz.ts run each of them. */
export const rpcProperties: ReadonlyArray<{ name: string; property: fc.IProperty<unknown> }> = [
  { name: 'random bytes', property: fc.property(randomInput, (i) => void checkViews(i.buf, i.off, i.len)) },
  { name: 'edge-value words', property: fc.property(wordInput, (i) => void checkViews(i.buf, i.off, i.len)) },
  {
    name: 'mutated golden messages',
    property: fc.property(mutatedGolden, (i) => {
      checkViews(i.buf, i.off, i.len);
      checkDecoders(i.buf, i.off, i.len);
    }),
  },
  { name: 'record streams', property: fc.property(recordStream, checkAssembler) },
  { name: 'xdr reads', property: fc.property(xdrOps, checkXdr) },
] as ReadonlyArray<{ name: string; property: fc.IProperty<unknown> }>;
