/**
 * The servers a benchmark compares, each started on free loopback ports:
 * our relay (standalone or a cluster of pods sharing a private Redis),
 * NetBird's relay built from its Go module, and a raw TCP splice.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from './proc.js';
import { freePort } from '../../test/support/free-port.js';
import { NO_PER_IP_LIMITS } from '../../test/support/loopback-limits.js';

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const SECRET = 'bench-secret';
export const RELAY_CLI = process.env.BENCH_RELAY_CLI ?? join(ROOT, 'dist', 'cli.js');
/** The runtime our relays run on (BENCH_NODE=path; `bash bench/node24.sh` fetches Node 24 into .cache/). */
export const RELAY_NODE = process.env.BENCH_NODE || process.execPath;
export const NETBIRD_RELAY_BIN = join(ROOT, 'test', 'interop', 'bin', 'netbird-relay');
const CLUSTER_SECRET = 'bench-cluster-secret';
const CLUSTER_URL = 'rel://relay.bench.invalid:443';

export { freePort };

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    for (const c of live) c.kill('SIGKILL');
    process.exit(130);
  });
}

/** A child process we can stop, kill, and start again with the same command. */
export class Proc {
  child!: ChildProcess;
  output = '';
  exited!: Promise<number | string>;

  constructor(
    readonly name: string,
    readonly cmd: string,
    readonly args: string[],
    readonly env: NodeJS.ProcessEnv,
    readonly readyUrl?: string,
    readonly readyTcpPort?: number,
  ) {}

  get pid(): number {
    return this.child.pid as number;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(timeoutMs = 20_000): Promise<this> {
    this.output = '';
    const child = spawn(this.cmd, this.args, { env: this.env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    live.add(child);
    const keep = (d: Buffer): void => {
      this.output = (this.output + d.toString()).slice(-20_000);
    };
    // Every line a process printed, when the last 20,000 characters are not enough.
    if (process.env.BENCH_PROC_LOG_DIR) {
      const log = createWriteStream(join(process.env.BENCH_PROC_LOG_DIR, `${this.name}.log`));
      child.stdout?.pipe(log);
    }
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((res) => {
      child.on('exit', (code, signal) => {
        live.delete(child);
        res(code ?? signal ?? 'unknown');
      });
      child.on('error', (err) => {
        live.delete(child);
        res(`spawn error: ${err.message}`);
      });
    });
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`${this.name} exited (${await this.exited}):\n${this.output}`);
      if (await this.#ready()) return this;
      await sleep(50);
    }
    throw new Error(`${this.name} not ready within ${timeoutMs} ms:\n${this.output}`);
  }

  async #ready(): Promise<boolean> {
    if (this.readyUrl) {
      try {
        const res = await fetch(this.readyUrl, { signal: AbortSignal.timeout(1000) });
        return res.status === 200;
      } catch {
        return false;
      }
    }
    if (this.readyTcpPort) {
      return new Promise((res) => {
        const s = createConnection({ host: '127.0.0.1', port: this.readyTcpPort as number });
        s.once('connect', () => {
          s.destroy();
          res(true);
        });
        s.once('error', () => res(false));
      });
    }
    return true;
  }

  /** Signal, wait for the exit; SIGKILL after timeoutMs. */
  async stop(signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 30_000): Promise<number | string> {
    if (!this.running) return this.exited;
    this.child.kill(signal);
    const timer = sleep(timeoutMs).then(() => 'timeout' as const);
    const first = await Promise.race([this.exited, timer]);
    if (first === 'timeout') {
      this.child.kill('SIGKILL');
      return this.exited;
    }
    return first;
  }
}

/** What a benchmark talks to: URLs per pod, and every process whose CPU counts. */
export interface Server {
  readonly label: string;
  /** One relay URL per pod (one entry for single-process servers). */
  readonly urls: string[];
  /** For the splice: host:port. */
  readonly raw?: string;
  readonly pods: Proc[];
  /** Processes whose CPU counts as "relay CPU" (pods + Redis). */
  cpuPids(): number[];
  stop(): Promise<void>;
}

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('NB_')) env[k] = v;
  return { ...env, ...extra };
}

export interface OurRelayOptions {
  env?: Record<string, string>;
  /** Write a V8 CPU profile into this directory (written on a graceful exit). */
  cpuProfDir?: string;
}

/** The runtime flags the image runs the relay with (deploy/Dockerfile ENTRYPOINT), so bench measures what ships. */
export const IMAGE_NODE_FLAGS: readonly string[] = imageNodeFlags();

function imageNodeFlags(): string[] {
  const line = readFileSync(join(ROOT, 'deploy', 'Dockerfile'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith('ENTRYPOINT '));
  const argv = line ? (JSON.parse(line.slice('ENTRYPOINT '.length)) as string[]) : [];
  const script = argv.indexOf('dist/cli.js');
  if (script < 1) throw new Error('deploy/Dockerfile: no ENTRYPOINT running dist/cli.js');
  return argv.slice(1, script);
}

async function ourRelayProc(name: string, options: OurRelayOptions & { exposed?: string }): Promise<Proc> {
  if (!existsSync(RELAY_CLI)) throw new Error(`${RELAY_CLI} missing: run "npm run build" first`);
  const [port, health, metrics] = [await freePort(), await freePort(), await freePort()];
  const nodeArgs = [
    ...IMAGE_NODE_FLAGS,
    ...(options.cpuProfDir
      ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`, `--cpu-prof-name=${name}.cpuprofile`]
      : []),
    // Diagnosis, e.g. BENCH_NODE_ARGS=--trace-gc (with BENCH_PROC_LOG_DIR to keep the output).
    ...(process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
  ];
  return new Proc(
    name,
    RELAY_NODE,
    [...nodeArgs, RELAY_CLI],
    cleanEnv({
      NB_LISTEN_ADDRESS: `127.0.0.1:${port}`,
      NB_EXPOSED_ADDRESS: options.exposed ?? `rel://127.0.0.1:${port}`,
      NB_AUTH_SECRET: SECRET,
      NB_METRICS_PORT: String(metrics),
      NB_HEALTH_LISTEN_ADDRESS: `127.0.0.1:${health}`,
      NB_LOG_LEVEL: 'warn',
      // Every bench client is on 127.0.0.1: measure the relay, not the per-IP limits.
      ...NO_PER_IP_LIMITS,
      ...options.env,
    }),
    `http://127.0.0.1:${health}/readyz`,
  );
}

function relayUrl(p: Proc): string {
  return `rel://${p.env.NB_LISTEN_ADDRESS}`;
}

export async function startOurs(options: OurRelayOptions = {}): Promise<Server> {
  const p = await (await ourRelayProc('ours', options)).start();
  return {
    label: 'ours standalone',
    urls: [relayUrl(p)],
    pods: [p],
    cpuPids: () => [p.pid],
    stop: async () => {
      await p.stop(options.cpuProfDir ? 'SIGTERM' : 'SIGKILL');
    },
  };
}

export interface Cluster extends Server {
  readonly redis: Proc;
}

/** `size` pods of our relay sharing a private, non-persistent Redis. */
export async function startCluster(size = 3, options: OurRelayOptions = {}): Promise<Cluster> {
  const redisPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'nb-bench-redis-'));
  const redis = await new Proc(
    'redis',
    'redis-server',
    ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    cleanEnv({}),
    undefined,
    redisPort,
  ).start();
  const pods: Proc[] = [];
  try {
    for (let i = 0; i < size; i++) {
      const mesh = await freePort();
      const pod = await ourRelayProc(`relay-${i}`, {
        ...options,
        exposed: CLUSTER_URL,
        env: {
          NB_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
          NB_CLUSTER_SECRET: CLUSTER_SECRET,
          NB_MESH_LISTEN_ADDRESS: `127.0.0.1:${mesh}`,
          NB_MESH_ADVERTISE_ADDRESS: `127.0.0.1:${mesh}`,
          NB_POD_NAME: `relay-${i}`,
          ...options.env,
        },
      });
      pods.push(await pod.start());
    }
  } catch (err) {
    await Promise.all(pods.map((p) => p.stop()));
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    label: `ours cluster (${size} pods)`,
    urls: pods.map(relayUrl),
    pods,
    redis,
    cpuPids: () => [...pods.filter((p) => p.running).map((p) => p.pid), redis.pid],
    stop: async () => {
      await Promise.all(pods.map((p) => p.stop(options.cpuProfDir ? 'SIGTERM' : 'SIGKILL')));
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Builds NetBird's relay through the interop harness (Go module proxy) when missing. */
export async function ensureNetbirdRelay(): Promise<void> {
  if (existsSync(NETBIRD_RELAY_BIN)) return;
  const { buildGoBinaries } = await import('../../test/interop/harness.js');
  console.error('building NetBird relay (first run only) …');
  await buildGoBinaries(15 * 60_000);
}

export async function startNetbird(): Promise<Server> {
  await ensureNetbirdRelay();
  const [port, health, metrics] = [await freePort(), await freePort(), await freePort()];
  const p = await new Proc(
    'netbird-relay',
    NETBIRD_RELAY_BIN,
    [
      '--listen-address',
      `127.0.0.1:${port}`,
      '--exposed-address',
      `rel://127.0.0.1:${port}`,
      '--auth-secret',
      SECRET,
      '--metrics-port',
      String(metrics),
      '--health-listen-address',
      `127.0.0.1:${health}`,
      '--log-level',
      'warn',
    ],
    cleanEnv({}),
    `http://127.0.0.1:${health}/health`,
  ).start();
  return {
    label: 'NetBird relay',
    urls: [`rel://127.0.0.1:${port}`],
    pods: [p],
    cpuPids: () => [p.pid],
    stop: async () => {
      await p.stop();
    },
  };
}

export async function startSplice(): Promise<Server> {
  const port = await freePort();
  const p = await new Proc(
    'splice',
    RELAY_NODE,
    [join(ROOT, 'bench', 'servers', 'splice.mjs'), String(port)],
    cleanEnv({}),
    undefined,
    undefined,
  ).start();
  // Wait until it listens without opening a connection (that would be paired).
  const deadline = Date.now() + 10_000;
  while (!p.output.includes('listening') && Date.now() < deadline) await sleep(20);
  return {
    label: 'raw TCP splice (Node)',
    urls: [],
    raw: `127.0.0.1:${port}`,
    pods: [p],
    cpuPids: () => [p.pid],
    stop: async () => {
      await p.stop();
    },
  };
}

export function ensureDir(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}
