import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eventually } from './eventually.js';
import { freePort } from './free-port.js';
import type { SelfSignedCert } from './self-signed-cert.js';

/**
 * Private redis-server processes for tests, on free loopback ports (never the
 * shared 6379). Every process started here is killed by stopAllRedis() and,
 * as a last resort, when the test process exits.
 */

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export { freePort };

/** Sends one inline command and returns the first reply line. */
export async function redisCommand(port: number, command: string, timeoutMs = 1_000): Promise<string> {
  return await new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`redis on ${port}: no reply to ${command}`));
    }, timeoutMs);
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) {
        clearTimeout(timer);
        socket.end();
        resolve(reply);
      }
    });
    socket.write(`${command}\r\n`);
  });
}

/** Polls until `check` holds; a check that throws (the server not up yet) counts as not yet. */
async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  await eventually(() => check().catch(() => false), timeoutMs, what);
}

/** How a client reaches a protected server: its password, and TLS with this certificate as CA. */
export interface RedisAccess {
  readonly password?: string;
  readonly tls?: SelfSignedCert;
}

/** Server settings (name, value) for a password (also used towards a primary) and TLS-only ports. */
function securitySettings(port: number, { password, tls }: RedisAccess): [string, string][] {
  const settings: [string, string][] = password
    ? [
        ['requirepass', password],
        ['masterauth', password],
      ]
    : [];
  if (tls) {
    settings.push(['port', '0'], ['tls-port', String(port)], ['tls-cert-file', tls.certFile]);
    settings.push(['tls-key-file', tls.keyFile], ['tls-ca-cert-file', tls.certFile]);
    settings.push(['tls-auth-clients', 'no'], ['tls-replication', 'yes'], ['tls-cluster', 'yes']);
  }
  return settings;
}

/** redis-cli arguments that authenticate and speak TLS like `access` says. */
function cliAccess({ password, tls }: RedisAccess = {}): string[] {
  return [
    ...(password ? ['-a', password, '--no-auth-warning'] : []),
    ...(tls ? ['--tls', '--cacert', tls.certFile] : []),
  ];
}

async function answersPing(port: number, access: RedisAccess): Promise<boolean> {
  if (!access.password && !access.tls) return (await redisCommand(port, 'PING')).startsWith('+PONG');
  return (await redisCli(port, ['PING'], access)).trim() === 'PONG';
}

export class RedisServer {
  readonly port: number;
  readonly access: RedisAccess;
  readonly #args: string[];
  readonly #env: NodeJS.ProcessEnv;
  #child: ChildProcess | undefined;

  private constructor(port: number, args: string[], access: RedisAccess, env: NodeJS.ProcessEnv) {
    this.port = port;
    this.access = access;
    this.#args = args;
    this.#env = env;
  }

  /**
   * Starts an empty, non-persistent redis-server; `args` are extra command-line settings;
   * `access`: require this password (and use it towards a primary), serve only TLS;
   * `env`: added to the server's environment.
   */
  static async start(
    args: string[] = [],
    port?: number,
    access: RedisAccess = {},
    env: NodeJS.ProcessEnv = {},
  ): Promise<RedisServer> {
    const server = new RedisServer(port ?? (await freePort()), args, access, env);
    await server.#spawn();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  async #spawn(): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        ...['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        ...securitySettings(this.port, this.access).flatMap(([name, value]) => [`--${name}`, value]),
        ...this.#args,
      ],
      { stdio: 'ignore', env: { ...process.env, ...this.#env } },
    );
    running.add(child);
    child.once('exit', () => running.delete(child));
    this.#child = child;
    await waitFor(() => answersPing(this.port, this.access), `redis on ${this.port}`);
  }

  /** kill -9: no goodbye to clients, data gone. */
  async kill(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** SIGSTOP: the server stops answering but keeps its connections and data (a network stall). */
  pause(): void {
    this.#child?.kill('SIGSTOP');
  }

  resume(): void {
    this.#child?.kill('SIGCONT');
  }

  /** Starts again on the same port, empty. */
  async restart(): Promise<void> {
    await this.kill();
    await this.#spawn();
  }

  async stop(): Promise<void> {
    await this.kill();
  }
}

/** A primary, one replica and one sentinel (quorum 1): enough to exercise a failover on a small machine. */
export class RedisSentinelSetup {
  readonly masterName = 'nbtest';
  primary!: RedisServer;
  replica!: RedisServer;
  sentinelPort!: number;
  /** How clients reach the Sentinel (its own password; TLS like the data nodes). */
  sentinelAccess: RedisAccess = {};
  #sentinel: ChildProcess | undefined;
  #dir: string | undefined;

  /** `access`: password and TLS of the data nodes; `sentinelPassword`: the Sentinel's own. */
  static async start(
    options: { access?: RedisAccess; sentinelPassword?: string } = {},
  ): Promise<RedisSentinelSetup> {
    const setup = new RedisSentinelSetup();
    const access = options.access ?? {};
    setup.sentinelAccess = { password: options.sentinelPassword, tls: access.tls };
    setup.primary = await RedisServer.start([], undefined, access);
    const primaryPort = String(setup.primary.port);
    setup.replica = await RedisServer.start(['--replicaof', '127.0.0.1', primaryPort], undefined, access);
    await waitFor(
      async () => (await infoField(setup.replica, 'replication', 'master_link_status')) === 'up',
      'replica in sync',
    );
    setup.sentinelPort = await freePort();
    setup.#dir = mkdtempSync(join(tmpdir(), 'nb-sentinel-'));
    const config = join(setup.#dir, 'sentinel.conf');
    writeFileSync(
      config,
      [
        `port ${setup.sentinelPort}`,
        'bind 127.0.0.1',
        `dir ${setup.#dir}`,
        `sentinel monitor ${setup.masterName} 127.0.0.1 ${setup.primary.port} 1`,
        `sentinel down-after-milliseconds ${setup.masterName} 1000`,
        `sentinel failover-timeout ${setup.masterName} 5000`,
        `sentinel parallel-syncs ${setup.masterName} 1`,
        ...(access.password ? [`sentinel auth-pass ${setup.masterName} ${access.password}`] : []),
        ...securitySettings(setup.sentinelPort, { ...setup.sentinelAccess, password: undefined }).map(
          (setting) => setting.join(' '),
        ),
        ...(options.sentinelPassword ? [`requirepass ${options.sentinelPassword}`] : []),
        '',
      ].join('\n'),
    );
    const child = spawn('redis-server', [config, '--sentinel'], { stdio: 'ignore' });
    running.add(child);
    child.once('exit', () => running.delete(child));
    setup.#sentinel = child;
    await waitFor(() => answersPing(setup.sentinelPort, setup.sentinelAccess), 'sentinel up');
    await waitFor(async () => (await setup.currentPrimaryPort()) !== undefined, 'sentinel');
    return setup;
  }

  /** The port sentinel currently reports as primary. */
  async currentPrimaryPort(): Promise<number | undefined> {
    const args = ['SENTINEL', 'get-master-addr-by-name', this.masterName];
    const lines = (await redisCli(this.sentinelPort, args, this.sentinelAccess)).trim().split('\n');
    return lines.length === 2 ? Number(lines[1]) : undefined;
  }

  async stop(): Promise<void> {
    this.#sentinel?.kill('SIGKILL');
    await Promise.all([this.primary?.stop(), this.replica?.stop()]);
    if (this.#dir) rmSync(this.#dir, { recursive: true, force: true });
  }
}

async function infoField(server: RedisServer, section: string, field: string): Promise<string | undefined> {
  const info = await redisCli(server.port, ['INFO', section], server.access);
  return new RegExp(`${field}:([^\\r\\n]*)`).exec(info)?.[1];
}

/** Runs redis-cli with raw output (authenticating and over TLS as `access` says). */
export async function redisCli(port: number, args: string[], access?: RedisAccess): Promise<string> {
  const { stdout } = await promisify(execFile)(
    'redis-cli',
    ['-p', String(port), '--raw', ...cliAccess(access), ...args],
    { timeout: 3_000 },
  );
  return stdout;
}

/** Three masters, no replicas, created with redis-cli --cluster create. */
export class RedisClusterSetup {
  readonly nodes: RedisServer[] = [];
  #dir: string | undefined;

  /**
   * `access`: password (requirepass and masterauth) and TLS (client and bus) of every node.
   * `replicas` per master: `size` counts them (6 nodes with 1 replica = 3 masters).
   */
  static async start(size = 3, access: RedisAccess = {}, replicas = 0): Promise<RedisClusterSetup> {
    const setup = new RedisClusterSetup();
    setup.#dir = mkdtempSync(join(tmpdir(), 'nb-cluster-'));
    for (let i = 0; i < size; i++) {
      const port = await freePort();
      // The bus port defaults to port + 10000, inside the ephemeral range where client sockets take ports.
      const busPort = await freePort();
      setup.nodes.push(
        await RedisServer.start(
          [
            '--cluster-enabled',
            'yes',
            '--cluster-port',
            String(busPort),
            '--cluster-config-file',
            join(setup.#dir, `nodes-${port}.conf`),
            '--cluster-node-timeout',
            '2000',
            '--dir',
            setup.#dir,
          ],
          port,
          access,
        ),
      );
    }
    const addresses = setup.nodes.map((node) => `127.0.0.1:${node.port}`);
    await promisify(execFile)(
      'redis-cli',
      [
        ...cliAccess(access),
        '--cluster',
        'create',
        ...addresses,
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      { timeout: 20_000 },
    );
    for (const node of setup.nodes) {
      await waitFor(
        async () => (await redisCli(node.port, ['CLUSTER', 'INFO'], access)).includes('cluster_state:ok'),
        'cluster state ok',
      );
    }
    // A replica that never synced with its master would refuse to replace it.
    for (const node of setup.nodes) {
      await waitFor(async () => {
        const info = await redisCli(node.port, ['INFO', 'replication'], access);
        return info.includes('role:master') || info.includes('master_link_status:up');
      }, 'replicas in sync');
    }
    return setup;
  }

  get hostPorts(): { host: string; port: number }[] {
    return this.nodes.map((node) => ({ host: '127.0.0.1', port: node.port }));
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop()));
    if (this.#dir) rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** Kills every redis process this module started (for afterAll). */
export async function stopAllRedis(): Promise<void> {
  const children = [...running];
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}
