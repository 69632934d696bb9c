import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  BIN_DIR,
  INTEROP_DIR,
  ManagedProcess,
  NETBIRD_RELAY_BIN,
  cleanEnv,
  freePorts,
} from '../../interop/harness.js';

/**
 * NetBird's own relay server, built from the Go module the interop suite
 * pins (test/interop/go.mod), started on free loopback ports. The build is
 * skipped while the binary is newer than test/interop/go.sum.
 */

const GO_SUM = join(INTEROP_DIR, 'go.sum');

export async function buildNetbirdRelay(timeoutMs = 600_000): Promise<void> {
  if (existsSync(NETBIRD_RELAY_BIN) && statSync(NETBIRD_RELAY_BIN).mtimeMs > statSync(GO_SUM).mtimeMs) return;
  mkdirSync(BIN_DIR, { recursive: true });
  await new Promise<void>((resolve, reject) => {
    const child = spawn('go', ['build', '-o', NETBIRD_RELAY_BIN, 'github.com/netbirdio/netbird/relay'], {
      cwd: INTEROP_DIR,
      env: { ...process.env, GOFLAGS: '-mod=mod' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`go build of NetBird's relay failed (${code ?? signal}):\n${output}`));
    });
  });
}

export interface NetbirdRelay {
  /** rel://127.0.0.1:port, also its exposed (instance) address. */
  readonly url: string;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

/**
 * Starts NetBird's relay with the flags its cobra command defines
 * (relay/cmd/root.go): listen/exposed address, auth secret, metrics port and
 * health listener; QUIC stays off without TLS, STUN is off by default.
 */
export async function startNetbirdRelay(
  secret: string,
  name = 'client-netbird-relay',
): Promise<NetbirdRelay> {
  await buildNetbirdRelay();
  // Free ports are released before the relay binds them, and its metrics server binds every
  // interface; on a busy machine a port is sometimes taken in between. Such a clash is retried.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnPorts(secret, name, (await freePorts(3)) as [number, number, number]);
    } catch (err) {
      if (attempt >= 6 || !(err instanceof PortClashError)) throw err;
    }
  }
}

class PortClashError extends Error {}

async function startOnPorts(
  secret: string,
  name: string,
  [listen, metrics, health]: [number, number, number],
): Promise<NetbirdRelay> {
  const url = `rel://127.0.0.1:${listen}`;
  const relayProcess = new ManagedProcess({
    name,
    cmd: NETBIRD_RELAY_BIN,
    args: [
      '--listen-address',
      `127.0.0.1:${listen}`,
      '--exposed-address',
      url,
      '--auth-secret',
      secret,
      '--metrics-port',
      String(metrics),
      '--health-listen-address',
      `127.0.0.1:${health}`,
      '--log-level',
      'warn',
    ],
    env: cleanEnv(),
    readyUrl: `http://127.0.0.1:${health}/health`,
  });
  try {
    await relayProcess.start();
  } catch (err) {
    await relayProcess.stop('SIGKILL', 5_000);
    const log = existsSync(relayProcess.logPath) ? readFileSync(relayProcess.logPath, 'utf8') : '';
    const lastRun = log.slice(log.lastIndexOf(' start: '));
    if (lastRun.includes('address already in use')) throw new PortClashError((err as Error).message);
    throw err;
  }
  return {
    url,
    process: relayProcess,
    stop: async () => {
      await relayProcess.stop('SIGKILL', 5_000);
    },
  };
}
