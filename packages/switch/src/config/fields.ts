/** A path into the config document: keys and list indexes. */
export type ConfigPath = readonly (string | number)[];

/** ConfigIssue is one validation error: where (path, and the YAML line/column when known) and what. */
export interface ConfigIssue {
  /** e.g. `entries[2].policy` */
  path: string;
  message: string;
  line?: number;
  column?: number;
  /** the raw path, for locating the node in the YAML document. */
  at: ConfigPath;
}

/** formatPath renders ['entries', 2, 'policy'] as `entries[2].policy` (the root is `(root)`). */
export function formatPath(p: ConfigPath): string {
  let s = '';
  for (const k of p) s += typeof k === 'number' ? `[${k}]` : s === '' ? k : `.${k}`;
  return s === '' ? '(root)' : s;
}

/** formatIssue renders `file:line:col path: message` (file and position when known). */
export function formatIssue(i: ConfigIssue, file?: string): string {
  const where =
    i.line !== undefined ? `${file ?? '<config>'}:${i.line}:${i.column ?? 1}: ` : file ? `${file}: ` : '';
  return `${where}${i.path}: ${i.message}`;
}

/** Issues collects validation errors. */
export class Issues {
  readonly list: ConfigIssue[] = [];
  add(at: ConfigPath, message: string): void {
    this.list.push({ path: formatPath(at), message, at: [...at] });
  }
  get ok(): boolean {
    return this.list.length === 0;
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  return `${typeof v} ${String(v)}`;
}

interface IntOpts {
  min?: number;
  max?: number;
}

/**
 * Fields reads one mapping of the config with field-precise errors. Every getter records the key as
 * known; `done()` then reports any key nobody read as an unknown field (typos do not pass silently).
 * Getters never throw: a bad value records an issue and returns undefined (or the default).
 */
export class Fields {
  private readonly seen = new Set<string>();
  readonly obj: Record<string, unknown>;

  constructor(
    value: unknown,
    readonly at: ConfigPath,
    readonly issues: Issues,
  ) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      if (value !== undefined) issues.add(at, `must be a mapping, got ${describe(value)}`);
      this.obj = {};
    } else this.obj = value as Record<string, unknown>;
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  /** raw marks a key as known and returns its value untouched. */
  raw(key: string): unknown {
    this.seen.add(key);
    return this.obj[key];
  }

  path(key: string | number): ConfigPath {
    return [...this.at, key];
  }

  /** error records an issue on one of this mapping's fields. */
  error(key: string | number, message: string): void {
    this.issues.add(this.path(key), message);
  }

  private missing(key: string): void {
    this.issues.add(this.path(key), 'is required');
  }

  str(key: string, required: true): string | undefined;
  str(key: string, required?: false): string | undefined;
  str(key: string, required = false): string | undefined {
    const v = this.raw(key);
    if (v === undefined || v === null) {
      if (required) this.missing(key);
      return undefined;
    }
    if (typeof v !== 'string' || v === '') {
      this.error(key, `must be a non-empty string, got ${describe(v)}`);
      return undefined;
    }
    return v;
  }

  oneOf<T extends string>(key: string, choices: readonly T[], dflt?: T): T | undefined {
    const v = this.raw(key);
    if (v === undefined || v === null) {
      if (dflt === undefined) this.missing(key);
      return dflt;
    }
    if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) {
      this.error(key, `must be one of ${choices.join(', ')}, got ${describe(v)}`);
      return dflt;
    }
    return v as T;
  }

  int(key: string, opts: IntOpts & { default: number }): number;
  int(key: string, opts?: IntOpts & { default?: undefined; required?: boolean }): number | undefined;
  int(key: string, opts: IntOpts & { default?: number; required?: boolean } = {}): number | undefined {
    const v = this.raw(key);
    if (v === undefined || v === null) {
      if (opts.default === undefined && opts.required) this.missing(key);
      return opts.default;
    }
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      this.error(key, `must be an integer, got ${describe(v)}`);
      return opts.default;
    }
    if (opts.min !== undefined && v < opts.min) {
      this.error(key, `must be at least ${opts.min}, got ${v}`);
      return opts.default;
    }
    if (opts.max !== undefined && v > opts.max) {
      this.error(key, `must be at most ${opts.max}, got ${v}`);
      return opts.default;
    }
    return v;
  }

  /** seconds reads a positive number of seconds (fractions allowed). */
  seconds(key: string, dflt: number, max = 86400 * 30): number {
    const v = this.raw(key);
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > max) {
      this.error(key, `must be a number of seconds in (0, ${max}], got ${describe(v)}`);
      return dflt;
    }
    return v;
  }

  bool(key: string, dflt: boolean): boolean {
    const v = this.raw(key);
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') {
      this.error(key, `must be true or false, got ${describe(v)}`);
      return dflt;
    }
    return v;
  }

  /** list returns the items of a list field ([] when absent and not required). */
  list(key: string, required = false): unknown[] {
    const v = this.raw(key);
    if (v === undefined || v === null) {
      if (required) this.missing(key);
      return [];
    }
    if (!Array.isArray(v)) {
      this.error(key, `must be a list, got ${describe(v)}`);
      return [];
    }
    return v;
  }

  /** sub returns a Fields for a nested mapping (an empty one when absent). */
  sub(key: string, required = false): Fields {
    const v = this.raw(key);
    if ((v === undefined || v === null) && required) this.missing(key);
    return new Fields(v ?? undefined, this.path(key), this.issues);
  }

  /** done reports every key that no getter read. */
  done(): void {
    for (const k of Object.keys(this.obj)) {
      if (!this.seen.has(k)) this.error(k, 'unknown field');
    }
  }
}
