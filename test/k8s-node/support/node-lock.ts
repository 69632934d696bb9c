import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * One real node at a time on this machine: vitest runs two files at once, and two nodes would
 * fight over the kernel settings the kubelet rewrites and over the machine's two cores. A directory
 * made with mkdir (atomic) holds the owner's pid; a lock whose owner is gone is taken over.
 */
const LOCK_DIR = join(tmpdir(), 'nb-cluster-relay-kube-node.lock');

function ownerAlive(): boolean {
  try {
    const pid = Number(readFileSync(join(LOCK_DIR, 'pid'), 'utf8'));
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // no pid file yet (the owner is between mkdir and write) counts as alive; a dead pid does not
    return (
      (err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'EPERM'
    );
  }
}

export async function acquireNodeLock(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(LOCK_DIR);
      writeFileSync(join(LOCK_DIR, 'pid'), String(process.pid));
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (!ownerAlive()) {
      rmSync(LOCK_DIR, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`another test's node still holds ${LOCK_DIR}`);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

export function releaseNodeLock(): void {
  try {
    if (Number(readFileSync(join(LOCK_DIR, 'pid'), 'utf8')) !== process.pid) return;
  } catch {
    return;
  }
  rmSync(LOCK_DIR, { recursive: true, force: true });
}
