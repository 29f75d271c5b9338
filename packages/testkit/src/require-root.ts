import { accessSync, constants } from 'node:fs';

/**
 * requireRoot checks that this process may create network namespaces and devices. Throws an Error that
 * says what is missing (not root, no `ip` binary) so that a suite fails loudly instead of skipping.
 */
export function requireRoot(): void {
  const uid = typeof process.getuid === 'function' ? process.getuid() : -1;
  if (uid !== 0) {
    throw new Error(`these tests create network namespaces and need root (running as uid ${uid})`);
  }
  const found = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].some((p) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  if (!found) throw new Error('these tests need the `ip` command (Debian package iproute2)');
}
