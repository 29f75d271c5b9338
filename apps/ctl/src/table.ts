/**
 * renderTable lays rows out in columns under upper-case headers, two spaces apart, the last column
 * unpadded. Returns the lines (no trailing newline).
 */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)];
}

/** duration renders milliseconds for people: "120 ms", "4.2 s", "7 min", "3 h", "2 d". */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min`;
  if (ms < 86_400_000) return `${Math.floor(ms / 3_600_000)} h`;
  return `${Math.floor(ms / 86_400_000)} d`;
}

/** ago renders a Unix time in milliseconds as "4.2 s ago" relative to `now`; "never" for 0. */
export function ago(unixMs: number, now: number): string {
  if (unixMs === 0) return 'never';
  return `${duration(Math.max(0, now - unixMs))} ago`;
}
