// Process plumbing for the agent suite: cached Go build of the agent and of
// NetBird's combined management server, the agent processes, a round-robin
// TCP front standing in for a load balancer, and management set-up over its API.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ManagedProcess, cleanEnv, freePorts } from '../interop/harness.js';

export const AGENTS_DIR = dirname(fileURLToPath(import.meta.url));
export const BIN_DIR = join(AGENTS_DIR, 'bin');
export const AGENT_BIN = join(BIN_DIR, 'agent');
export const MANAGEMENT_BIN = join(BIN_DIR, 'management');
// The same agent built against NetBird v0.65.3 (old/, its own module): the
// oldest release the module proxy serves whose embed package has Status().
export const OLD_AGENT_VERSION = 'v0.65.3';
export const OLD_AGENT_BIN = join(BIN_DIR, `agent-${OLD_AGENT_VERSION}`);
// In the worktree, not in the shared .cache: another checkout running this
// suite at the same time would remove and mix the logs whose lines are counted.
export const AGENT_LOG_DIR = join(AGENTS_DIR, 'logs');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'bin') newest = Math.max(newest, newestSource(p));
    } else if (/\.go$|^go\.(mod|sum)$/.test(entry.name)) {
      newest = Math.max(newest, statSync(p).mtimeMs);
    }
  }
  return newest;
}

function run(args: string[], timeoutMs: number, cwd = AGENTS_DIR): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('nice', ['-n', '10', 'go', ...args], {
      cwd,
      env: { ...process.env, CGO_ENABLED: '1', GOFLAGS: '-mod=mod -p=1' },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`go ${args.join(' ')} failed (${code ?? signal}):\n${out}`));
    });
  });
}

/** Builds each binary unless it is newer than its cmd/ sources, go.mod and go.sum. */
export async function buildAgentBinaries(timeoutMs: number): Promise<{ built: string[]; ms: number }> {
  const start = Date.now();
  const built: string[] = [];
  const shared = Math.max(...['go.mod', 'go.sum'].map((f) => statSync(join(AGENTS_DIR, f)).mtimeMs));
  mkdirSync(BIN_DIR, { recursive: true });
  for (const [name, bin] of [
    ['agent', AGENT_BIN],
    ['management', MANAGEMENT_BIN],
  ] as const) {
    const sources = Math.max(shared, newestSource(join(AGENTS_DIR, 'cmd', name)));
    if (existsSync(bin) && statSync(bin).mtimeMs > sources) continue;
    await run(['build', '-o', bin, `./cmd/${name}`], timeoutMs);
    built.push(name);
  }
  return { built, ms: Date.now() - start };
}

/** Builds the v0.65.3 agent (old/: own go.mod, go.sum and options.go; main.go and traffic.go linked from cmd/agent). */
export async function buildOldAgent(timeoutMs: number): Promise<{ built: boolean; ms: number }> {
  const start = Date.now();
  const oldDir = join(AGENTS_DIR, 'old');
  const sources = Math.max(newestSource(oldDir), newestSource(join(AGENTS_DIR, 'cmd', 'agent')));
  if (existsSync(OLD_AGENT_BIN) && statSync(OLD_AGENT_BIN).mtimeMs > sources) return { built: false, ms: 0 };
  mkdirSync(BIN_DIR, { recursive: true });
  await run(['build', '-o', OLD_AGENT_BIN, './agent'], timeoutMs, oldDir);
  return { built: true, ms: Date.now() - start };
}

/** Spreads connections over its targets in turn, as a plain L4 load balancer does. */
export class RoundRobinFront {
  readonly #sockets = new Set<Socket>();
  #next = 0;
  private constructor(
    readonly port: number,
    readonly targets: number[],
    private readonly server: Server,
  ) {}

  static async start(port: number, targets: number[]): Promise<RoundRobinFront> {
    const server = createServer();
    const front = new RoundRobinFront(port, targets, server);
    server.on('connection', (inbound) => front.#forward(inbound));
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return front;
  }

  #forward(inbound: Socket): void {
    const target = this.targets[this.#next++ % this.targets.length] as number;
    const outbound = createConnection({ host: '127.0.0.1', port: target });
    for (const socket of [inbound, outbound]) {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      socket.on('error', () => {});
    }
    inbound.pipe(outbound).pipe(inbound);
    inbound.once('close', () => outbound.destroy());
    outbound.once('close', () => inbound.destroy());
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export interface Management {
  process: ManagedProcess;
  url: string;
  setupKey: string;
}

/**
 * NetBird's combined server pointed at the relay under test, on loopback, with
 * its data in dataDir; returns a reusable ephemeral setup key made over its API.
 */
export async function startManagement(opts: {
  dataDir: string;
  relayUrls: string[];
  relaySecret: string;
  credentialsTtl: string;
  /** false: the account's lazy-connection flag off (agents before v0.77.1 cannot override it locally) */
  lazyConnections?: boolean;
}): Promise<Management> {
  const [listen, metrics, health] = (await freePorts(3)) as [number, number, number];
  const url = `http://127.0.0.1:${listen}`;
  const config = join(opts.dataDir, 'management.yaml');
  writeFileSync(
    config,
    [
      'server:',
      `  listenAddress: "127.0.0.1:${listen}"`,
      `  exposedAddress: "${url}"`,
      `  metricsPort: ${metrics}`,
      `  healthcheckAddress: "127.0.0.1:${health}"`,
      '  logLevel: "info"',
      '  logFile: "console"',
      `  authSecret: "${randomBytes(16).toString('hex')}"`,
      `  dataDir: "${opts.dataDir}"`,
      // An external STUN entry keeps the combined server from binding UDP 3478.
      '  stuns:',
      '    - uri: "stun:127.0.0.1:9"',
      '  relays:',
      '    addresses:',
      ...opts.relayUrls.map((u) => `      - "${u}"`),
      `    credentialsTTL: "${opts.credentialsTtl}"`,
      `    secret: "${opts.relaySecret}"`,
      '  disableAnonymousMetrics: true',
      '  disableGeoliteUpdate: true',
      '  auth:',
      `    issuer: "${url}/oauth2"`,
      '    cliRedirectURIs:',
      '      - "http://localhost:53000/"',
      '  store:',
      '    engine: "sqlite"',
      `    encryptionKey: "${randomBytes(32).toString('base64')}"`,
      '',
    ].join('\n'),
  );
  const process = new ManagedProcess({
    name: 'agents-management',
    cmd: MANAGEMENT_BIN,
    args: ['--config', config],
    env: cleanEnv({ NB_SETUP_PAT_ENABLED: 'true', NB_DISABLE_GEOLOCATION: 'true', HOME: opts.dataDir }),
    // Its /health handler panics when the relay is external (v0.77.1), so
    // readiness is the unauthenticated instance endpoint of the API.
    readyUrl: `${url}/api/instance`,
  });
  await process.start(120_000);
  const setup = await api(url, 'POST', '/api/setup', undefined, {
    email: 'owner@example.com',
    name: 'Owner',
    password: `Pw-${randomBytes(12).toString('hex')}`,
    create_pat: true,
  });
  const pat = setup.personal_access_token as string;
  if (!pat) throw new Error(`management did not return a PAT: ${JSON.stringify(setup)}`);
  if (opts.lazyConnections === false) {
    const accounts = (await api(url, 'GET', '/api/accounts', pat, undefined)) as unknown as {
      id: string;
      settings: Record<string, unknown>;
    }[];
    for (const account of accounts) {
      await api(url, 'PUT', `/api/accounts/${account.id}`, pat, {
        settings: { ...account.settings, lazy_connection_enabled: false },
      });
    }
  }
  const key = await api(url, 'POST', '/api/setup-keys', pat, {
    name: 'agents',
    type: 'reusable',
    expires_in: 86_400,
    auto_groups: [],
    ephemeral: true,
    usage_limit: 0,
  });
  return { process, url, setupKey: key.key as string };
}

async function api(
  base: string,
  method: string,
  path: string,
  pat: string | undefined,
  body: unknown,
): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(pat ? { authorization: `Token ${pat}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

export interface PeerStatus {
  ip: string;
  pubKey: string;
  connStatus: string;
  relayed: boolean;
  relayServerAddress: string;
  /** Unix ms; 0 when never */
  connStatusUpdateMs?: number;
  lastHandshakeMs?: number;
  bytesTx?: number;
  bytesRx?: number;
}
export interface AgentStatus {
  ip: string;
  pubKey: string;
  peers: PeerStatus[];
}
type Reply = Record<string, unknown> & { event: string };

export interface AgentOptions {
  name: string;
  management: string;
  setupKey: string;
  /** config (WireGuard key: same dir, same peer), state and HOME */
  dir: string;
  logLevel?: string;
  /** the agent binary; AGENT_BIN (v0.77.1) unless given */
  bin?: string;
}

export function agentLog(name: string): string {
  return join(AGENT_LOG_DIR, `agent-${name}.log`);
}

const liveAgents = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of liveAgents) c.kill('SIGKILL');
});

/** One agent process (test/agents/cmd/agent); requests are answered in order. */
export class Agent {
  readonly #waiting: { event: string; resolve: (r: Reply) => void }[] = [];
  #chain: Promise<unknown> = Promise.resolve();
  readonly exited: Promise<number | string>;
  ip = '';
  pubKey = '';

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly options: AgentOptions,
  ) {
    liveAgents.add(child);
    this.exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        liveAgents.delete(child);
        for (const w of this.#waiting.splice(0))
          w.resolve({ event: 'exit', error: `exited ${code ?? signal}` });
        resolve(code ?? signal ?? 'unknown');
      }),
    );
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let msg: Reply;
      try {
        msg = JSON.parse(line) as Reply;
      } catch {
        return;
      }
      const at = this.#waiting.findIndex((w) => w.event === msg.event || msg.event === 'error');
      if (at !== -1) this.#waiting.splice(at, 1)[0]!.resolve(msg);
    });
  }

  static async start(opts: AgentOptions): Promise<Agent> {
    mkdirSync(opts.dir, { recursive: true });
    mkdirSync(AGENT_LOG_DIR, { recursive: true });
    // The agent writes its log straight into the file: through a pipe, a busy
    // test process would stall the agent's logging and so its packet path.
    const log = openSync(agentLog(opts.name), 'a');
    const child = spawn(
      opts.bin ?? AGENT_BIN,
      [
        '-setup-key',
        opts.setupKey,
        '-management-url',
        opts.management,
        '-name',
        opts.name,
        '-config',
        join(opts.dir, 'config.json'),
        '-state',
        join(opts.dir, 'state.json'),
        '-log-level',
        opts.logLevel ?? 'info',
      ],
      {
        env: cleanEnv({
          NB_FORCE_RELAY: 'true',
          NB_RELAY_TRANSPORT: 'ws',
          NB_FORCE_USERSPACE_FIREWALL: 'true',
          NB_STATE_DIR: opts.dir,
          HOME: opts.dir,
        }),
        stdio: ['pipe', 'pipe', log],
      },
    );
    closeSync(log);
    const agent = new Agent(opts.name, child, opts);
    const started = await agent.#await('started', 90_000);
    if (started.event !== 'started') throw new Error(`agent ${opts.name}: ${String(started.error)}`);
    agent.ip = started.ip as string;
    agent.pubKey = started.pubKey as string;
    return agent;
  }

  #await(event: string, timeoutMs: number): Promise<Reply> {
    return new Promise((resolve) => {
      const entry = { event, resolve };
      this.#waiting.push(entry);
      setTimeout(() => {
        const at = this.#waiting.indexOf(entry);
        if (at !== -1) this.#waiting.splice(at, 1);
        resolve({ event: 'timeout', error: `no ${event} within ${timeoutMs} ms` });
      }, timeoutMs).unref();
    });
  }

  /** Sends one command and waits for its reply; one command in flight at a time. */
  request(command: string, event: string, timeoutMs = 40_000): Promise<Reply> {
    const next = this.#chain.then(() => {
      const reply = this.#await(event, timeoutMs);
      this.child.stdin!.write(`${command}\n`);
      return reply;
    });
    this.#chain = next.catch(() => undefined);
    return next;
  }

  async status(): Promise<AgentStatus> {
    const r = await this.request('status', 'status');
    if (r.event !== 'status') throw new Error(`agent ${this.name}: ${String(r.error)}`);
    return r as unknown as AgentStatus;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await this.request('stop', 'stopped', 15_000);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await this.exited;
    clearTimeout(timer);
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }
}
