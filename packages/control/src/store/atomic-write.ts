import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

let sequence = 0;

/**
 * writeFileAtomic replaces `path` with `data` so that a crash leaves either the old or the new
 * contents: write a temporary file beside it, fsync it, rename it over `path`, fsync the directory.
 * Throws the file system's error (the old contents then stay).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${++sequence}.tmp`);
  const file = await open(tmp, 'w', mode);
  try {
    await file.writeFile(data);
    await file.sync();
  } catch (err) {
    await file.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await file.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  // The rename is durable only once the directory entry is.
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** isTempFileOf tells whether `name` is one of writeFileAtomic's leftovers for `path` (after a crash). */
export function isTempFileOf(path: string, name: string): boolean {
  const base = basename(path);
  return name.startsWith(`.${base}.`) && name.endsWith('.tmp');
}
