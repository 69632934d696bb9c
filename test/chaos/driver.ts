import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RelayClient, type PeerConnection } from '../../src/client/index.js';
import { CLUSTER_SECRET, startPod, type Pod } from '../cluster/cluster-pods.js';
import { freePort } from '../support/free-port.js';
import { TEST_SECRET } from '../support/in-process-relay.js';
import {
  RedisClusterSetup,
  RedisSentinelSetup,
  RedisServer,
  redisCli,
  stopAllRedis,
} from '../support/redis-server.js';
import { TcpForwarder } from '../support/tcp-forwarder.js';
import { watchHostStalls, type HostStallMonitor } from './host-stall.js';
import { LiveFuzzer, type FuzzReport, type FuzzTarget } from './fuzzer.js';
import { HistoryWriter } from './history.js';
import { Rng } from './rng.js';

export type Topology = 'redis' | 'sentinel' | 'cluster';

export interface ChaosOptions {
  seed: number;
  /** How long faults are injected; setup and the final convergence phase come on top. */
  durationMs: number;
  topology: Topology;
  clients: number;
  /** Directory for the history file (and Redis data). */
  dir: string;
  /** Convergence bound the checker applies after every fault and after the heal. */
  boundMs: number;
  /** How long a replaced session may still get traffic outside fault windows (pub/sub lag). */
  displaceMs?: number;
  rssBoundBytes: number;
  /** A gap in the driver's own scheduling longer than this is recorded as a `host-stall` fault (0: never). */
  stallMs?: number;
  /** Mutated frames the live fuzzer sends at pod chaos-1 while the chaos traffic flows (0: no fuzzer). */
  fuzzFrames?: number;
  /** How long the fuzzer may go on after the last fault while the traffic still flows (default: half the duration, at least 30 s). */
  fuzzAfterMs?: number;
  log?: (line: string) => void;
}

export interface ScheduledFault {
  id: number;
  at: number;
  kind: string;
  pod: number;
  ms: number;
}

export interface ChaosResult {
  historyFile: string;
  schedule: ScheduledFault[];
  fuzz?: FuzzReport;
}

/** Half the displacement allowance: a stall this long can by itself push a recorded delivery past it. */
const DEFAULT_STALL_MS = 500;

const POD_FAULTS = ['pod-kill', 'pod-pause', 'mesh-partition', 'rolling-restart'];
const REDIS_FAULTS: Record<Topology, string[]> = {
  redis: ['redis-kill-keep', 'redis-kill-wipe', 'redis-partition-pod', 'redis-latency'],
  sentinel: ['sentinel-failover'],
  cluster: ['cluster-failover'],
};

/** The fault schedule a seed stands for: same seed, same topology, same duration, same schedule. */
export function scheduleFor(seed: number, topology: Topology, durationMs: number): ScheduledFault[] {
  const rng = new Rng(seed ^ 0x5eed);
  const kinds = [...POD_FAULTS, ...REDIS_FAULTS[topology]];
  const schedule: ScheduledFault[] = [];
  // Gaps shorter than most fault durations, so faults overlap at times.
  for (let at = rng.int(1_000, 3_000), id = 1; at < durationMs; at += rng.int(2_000, 6_000), id++) {
    const kind = rng.pick(kinds);
    // A pause is longer than the 2 s heartbeat expiry: the pod wakes up believing it still owns its sessions.
    const ms = kind === 'pod-pause' ? rng.int(3_000, 5_000) : rng.int(500, 3_500);
    schedule.push({ id, at, kind, pod: rng.int(0, 3), ms });
  }
  return schedule;
}

interface PodSlot {
  index: number;
  name: string;
  env: Record<string, string>;
  meshPort: number;
  meshProxy: TcpForwarder;
  pod?: Pod;
  /** The running process's registry instance (read from Redis once its heartbeat wrote it). */
  instanceId?: string;
  state: 'up' | 'down' | 'paused';
  expectExit: boolean;
  lock: Promise<void>;
}

interface Session {
  s: number;
  client: RelayClient;
  alive: boolean;
  conns: Map<string, PeerConnection>;
}

interface ChaosPeer {
  id: string;
  partners: string[];
  sessions: number;
  seq: number;
  current?: Session;
  all: Set<Session>;
}

/** Redis side of a run: how pods reach it and the faults only it can have. */
interface RedisSide {
  envFor(pod: number): Record<string, string>;
  /** The instance the pod named `pod` runs as now, from the pods table its heartbeat writes. */
  instanceOf(pod: string): Promise<string | undefined>;
  fault(kind: string, target: number, ms: number, rng: Rng): Promise<void>;
  stop(): Promise<void>;
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true;
    await sleep(100);
  }
  return false;
}

async function singleRedis(dir: string): Promise<RedisSide> {
  const dataDir = join(dir, 'redis-data');
  mkdirSync(dataDir, { recursive: true });
  // AOF on disk so a restart "with data" has something to load.
  const redis = await RedisServer.start(['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dataDir]);
  const proxies = await Promise.all([0, 1, 2].map(() => TcpForwarder.start(redis.port)));
  return {
    envFor: (pod) => ({ NB_REDIS_URL: `redis://127.0.0.1:${proxies[pod]?.port}` }),
    instanceOf: (pod) => readInstance(redis.port, pod),
    async fault(kind, target, ms) {
      if (kind === 'redis-kill-keep' || kind === 'redis-kill-wipe') {
        await redis.kill();
        await sleep(ms / 3);
        if (kind === 'redis-kill-wipe') {
          for (const entry of readdirSync(dataDir))
            rmSync(join(dataDir, entry), { recursive: true, force: true });
        }
        await redis.restart();
      } else if (kind === 'redis-partition-pod') {
        proxies[target]?.cut();
        await sleep(ms);
        proxies[target]?.restore();
      } else if (kind === 'redis-latency') {
        for (const proxy of proxies) proxy.latencyMs = 50 + Math.round(ms / 20);
        await sleep(ms);
        for (const proxy of proxies) proxy.latencyMs = 0;
      }
    },
    async stop() {
      await Promise.all(proxies.map((proxy) => proxy.close()));
      await redis.stop();
    },
  };
}

async function sentinelRedis(): Promise<RedisSide> {
  const setup = await RedisSentinelSetup.start();
  return {
    envFor: () => ({
      NB_REDIS_SENTINELS: `127.0.0.1:${setup.sentinelPort}`,
      NB_REDIS_SENTINEL_NAME: setup.masterName,
    }),
    instanceOf: async (pod) => {
      const primary = await setup.currentPrimaryPort();
      return primary === undefined ? undefined : readInstance(primary, pod);
    },
    async fault() {
      const before = await setup.currentPrimaryPort();
      await redisCli(setup.sentinelPort, ['SENTINEL', 'failover', setup.masterName]).catch(() => '');
      await waitUntil(async () => (await setup.currentPrimaryPort()) !== before, 20_000);
      // The demoted primary must be a synced replica again before the next failover can succeed.
      await waitUntil(async () => {
        const primary = await setup.currentPrimaryPort();
        const other = [setup.primary, setup.replica].find((server) => server.port !== primary);
        return (
          !!other && (await redisCli(other.port, ['INFO', 'replication'])).includes('master_link_status:up')
        );
      }, 20_000);
    },
    stop: () => setup.stop(),
  };
}

async function clusterRedis(): Promise<RedisSide> {
  const setup = await RedisClusterSetup.start(6, {}, 1);
  return {
    envFor: () => ({
      NB_REDIS_CLUSTER_NODES: setup.hostPorts.map(({ host, port }) => `${host}:${port}`).join(','),
    }),
    instanceOf: (pod) => readInstance(setup.hostPorts[0]?.port ?? 0, pod, ['-c']),
    async fault(_kind, target) {
      const replicas: number[] = [];
      for (const node of setup.nodes) {
        const info = await redisCli(node.port, ['INFO', 'replication']).catch(() => '');
        if (info.includes('role:slave') && info.includes('master_link_status:up')) replicas.push(node.port);
      }
      const port = replicas[target % Math.max(1, replicas.length)];
      if (port === undefined) return;
      await redisCli(port, ['CLUSTER', 'FAILOVER']).catch(() => '');
      await waitUntil(
        async () => (await redisCli(port, ['INFO', 'replication'])).includes('role:master'),
        20_000,
      );
      await waitUntil(
        async () => (await redisCli(port, ['CLUSTER', 'INFO'])).includes('cluster_state:ok'),
        20_000,
      );
    },
    stop: () => setup.stop(),
  };
}

/** Default key prefix of the relay (NB_REDIS_KEY_PREFIX); '-c' follows Redis Cluster redirections. */
async function readInstance(port: number, pod: string, flags: string[] = []): Promise<string | undefined> {
  const answer = (
    await redisCli(port, [...flags, 'HGET', 'nbrelay:{cluster}:pods', pod]).catch(() => '')
  ).trim();
  return answer === '' ? undefined : answer;
}

function rssBytes(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Runs one seeded chaos run and writes its history; judging it is the checker's job. */
export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const log = options.log ?? (() => {});
  mkdirSync(options.dir, { recursive: true });
  const historyFile = join(options.dir, `history-${options.topology}-${options.seed}.jsonl`);
  const history = new HistoryWriter(historyFile);
  const rng = new Rng(options.seed);
  const schedule = scheduleFor(options.seed, options.topology, options.durationMs);
  history.write('run', {
    seed: options.seed,
    topology: options.topology,
    durationMs: options.durationMs,
    clients: options.clients,
    boundMs: options.boundMs,
    displaceMs: options.displaceMs ?? 1_000,
    rssBoundBytes: options.rssBoundBytes,
    stallMs: options.stallMs ?? DEFAULT_STALL_MS,
    schedule,
  });
  log(`chaos seed=${options.seed} topology=${options.topology} schedule=${JSON.stringify(schedule)}`);

  let stopping = false;
  const timers = new Set<NodeJS.Timeout>();
  const slots: PodSlot[] = [];
  const peers: ChaosPeer[] = [];
  let redisSide: RedisSide | undefined;
  let fuzzer: LiveFuzzer | undefined;
  let fuzzReport: FuzzReport | undefined;
  let stalls: HostStallMonitor | undefined;
  // If the driver itself dies, its relay processes must not outlive it.
  const killPods = (): void => {
    for (const slot of slots) slot.pod?.process.kill('SIGKILL');
  };
  process.once('exit', killPods);

  const watchExit = (slot: PodSlot): void => {
    const pod = slot.pod;
    void pod?.process.exited.then(({ code, signal }) => {
      if (slot.pod !== pod) return;
      slot.state = 'down';
      if (stopping) return;
      // An unscheduled exit keeps the end of the process's output: its last words say why.
      const output = slot.expectExit ? {} : { output: pod.process.output.slice(-4_000) };
      history.write('exit', { pod: slot.name, code, signal, scheduled: slot.expectExit, ...output });
    });
  };
  const startSlot = async (slot: PodSlot): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        slot.pod = await startPod(slot.name, slot.env, {
          meshPort: slot.meshPort,
          advertisePort: slot.meshProxy.port,
        });
        break;
      } catch (err) {
        // Redis may be down or cut by an overlapping fault: keep trying, like a pod's restart policy.
        if (attempt >= 10) throw err;
        await sleep(500);
      }
    }
    slot.expectExit = false;
    slot.instanceId = undefined;
    slot.state = 'up';
    history.write('pod', {
      pod: slot.name,
      phase: 'up',
      port: slot.pod.process.port,
      pid: slot.pod.process.child.pid,
    });
    watchExit(slot);
  };
  const withLock = async (slot: PodSlot, work: () => Promise<void>): Promise<void> => {
    const previous = slot.lock;
    let release!: () => void;
    slot.lock = new Promise((resolve) => (release = resolve));
    await previous;
    try {
      await work();
    } finally {
      release();
    }
  };
  const stopSlot = async (slot: PodSlot, signal: NodeJS.Signals): Promise<void> => {
    const pod = slot.pod;
    if (!pod) return;
    slot.expectExit = true;
    pod.process.kill(signal);
    const exited = await Promise.race([pod.process.exited.then(() => true), sleep(15_000).then(() => false)]);
    if (!exited) {
      pod.process.kill('SIGKILL');
      await pod.process.exited;
    }
    slot.state = 'down';
  };

  // --- clients ---------------------------------------------------------------
  const liveSlots = (): PodSlot[] => slots.filter((slot) => slot.state === 'up' && slot.pod);
  const openLoop = async (peer: ChaosPeer, session: Session, partner: string): Promise<void> => {
    while (session.alive && !stopping) {
      let conn: PeerConnection;
      try {
        conn = await session.client.openConn(partner, { timeoutMs: 5_000 });
      } catch {
        await sleep(200);
        continue;
      }
      history.write('on', { peer: peer.id, s: session.s, of: partner });
      session.conns.set(partner, conn);
      conn.on('data', (payload) => {
        let m: { f: string; fs: number; d: string; q: number };
        try {
          m = JSON.parse(payload.toString()) as typeof m;
        } catch {
          // Not a chaos message (fuzz traffic must never reach a chaos client): the checker flags it.
          history.write('recv', { peer: peer.id, s: session.s, from: partner, dst: '(not a chaos message)' });
          return;
        }
        history.write('recv', { peer: peer.id, s: session.s, from: m.f, fs: m.fs, seq: m.q, dst: m.d });
      });
      // Not once('close'): ws may hand over online and offline in one tick, so the
      // connection can already be closed (its event gone) when openConn resolves.
      const reason = await conn.whenClosed();
      session.conns.delete(partner);
      if (reason === 'peer_offline') history.write('off', { peer: peer.id, s: session.s, of: partner });
      else {
        history.write('closed', { peer: peer.id, s: session.s, of: partner, reason });
        if (reason !== 'relay_disconnected') continue;
        return;
      }
    }
  };
  const startSession = async (peer: ChaosPeer, asCurrent: boolean): Promise<void> => {
    if (stopping) return;
    const slot = liveSlots().length > 0 ? rng.pick(liveSlots()) : undefined;
    const s = ++peer.sessions;
    if (!slot?.pod) {
      if (asCurrent) later(() => void startSession(peer, true), 300);
      return;
    }
    // Tells the checker that this session is newer than every one of the peer already up.
    history.write('dial', { peer: peer.id, s });
    const client = new RelayClient({
      url: `rel://127.0.0.1:${slot.pod.process.port}`,
      peer: peer.id,
      auth: { secret: TEST_SECRET },
      connectTimeoutMs: 5_000,
      authTimeoutMs: 5_000,
    });
    const session: Session = { s, client, alive: false, conns: new Map() };
    if (asCurrent) peer.current = session;
    client.on('disconnected', () => {
      if (!session.alive) return;
      session.alive = false;
      peer.all.delete(session);
      history.write('sess', { peer: peer.id, s, phase: 'down' });
      if (peer.current === session && !stopping)
        later(() => void startSession(peer, true), rng.int(100, 800));
    });
    try {
      await client.connect();
    } catch {
      client.terminate();
      if (peer.current === session) later(() => void startSession(peer, true), rng.int(200, 800));
      return;
    }
    if (stopping) {
      client.terminate();
      return;
    }
    session.alive = true;
    peer.all.add(session);
    history.write('sess', { peer: peer.id, s, phase: 'up', pod: slot.name });
    for (const partner of peer.partners) void openLoop(peer, session, partner);
  };
  const later = (work: () => void, ms: number): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      work();
    }, ms);
    timers.add(timer);
  };
  const failedSends = new WeakSet<PeerConnection>();
  const send = (peer: ChaosPeer, session: Session, to: string, conn: PeerConnection, fin: boolean): void => {
    const seq = peer.seq + 1;
    try {
      conn.send(Buffer.from(JSON.stringify({ f: peer.id, fs: session.s, d: to, q: seq })));
    } catch (err) {
      // Not sent, so nothing to lose; recorded once per connection, for diagnosis.
      if (!failedSends.has(conn)) {
        failedSends.add(conn);
        history.write('send-failed', { peer: peer.id, s: session.s, to, error: String(err) });
      }
      return;
    }
    // Written after the synchronous send: no receive can be recorded before it.
    peer.seq = seq;
    history.write('send', { peer: peer.id, s: session.s, to, seq, ...(fin ? { fin: true } : {}) });
  };

  try {
    // --- cluster -------------------------------------------------------------
    redisSide =
      options.topology === 'redis'
        ? await singleRedis(options.dir)
        : options.topology === 'sentinel'
          ? await sentinelRedis()
          : await clusterRedis();
    for (let index = 0; index < 3; index++) {
      const meshPort = await freePort();
      const slot: PodSlot = {
        index,
        name: `chaos-${index + 1}`,
        env: { ...redisSide.envFor(index), NB_DRAIN_WINDOW: '1s' },
        meshPort,
        meshProxy: await TcpForwarder.start(meshPort),
        state: 'down',
        expectExit: false,
        lock: Promise.resolve(),
      };
      slots.push(slot);
      await startSlot(slot);
    }
    const stallMs = options.stallMs ?? DEFAULT_STALL_MS;
    stalls = stallMs > 0 ? watchHostStalls(history, stallMs) : undefined;
    const rssTimer = setInterval(() => {
      for (const slot of slots) {
        const bytes = rssBytes(slot.pod?.process.child.pid);
        if (bytes !== undefined && slot.state !== 'down') history.write('rss', { pod: slot.name, bytes });
      }
    }, 1_000);

    // --- peers: a symmetric random graph, each with 2..4 partners -----------
    for (let i = 0; i < options.clients; i++) {
      peers.push({ id: `chaos-${options.seed}-${i}`, partners: [], sessions: 0, seq: 0, all: new Set() });
    }
    for (const peer of peers) {
      while (peer.partners.length < 2 + rng.int(0, 3)) {
        const other = rng.pick(peers);
        if (other === peer || peer.partners.includes(other.id)) continue;
        peer.partners.push(other.id);
        other.partners.push(peer.id);
      }
    }
    await Promise.all(peers.map((peer) => startSession(peer, true)));
    const fuzzed = slots[0] as PodSlot;
    fuzzer =
      (options.fuzzFrames ?? 0) > 0
        ? new LiveFuzzer({
            seed: options.seed,
            frames: options.fuzzFrames ?? 0,
            authSecret: TEST_SECRET,
            clusterSecret: CLUSTER_SECRET,
            target: (): FuzzTarget | undefined =>
              fuzzed.state === 'up' && fuzzed.pod && fuzzed.instanceId
                ? {
                    relayPort: fuzzed.pod.process.port,
                    meshPort: fuzzed.meshPort,
                    instanceId: fuzzed.instanceId,
                  }
                : undefined,
            onBystanderClosed: (who, code) =>
              history.write('fuzz-bystander', { pod: fuzzed.name, who, code }),
          })
        : undefined;
    // The fuzzer's mesh dials name the target's instance, which changes with every restart.
    const instanceTimer = setInterval(() => {
      if (!fuzzer || fuzzed.state !== 'up') return;
      void redisSide?.instanceOf(fuzzed.name).then((id) => {
        if (id !== undefined && fuzzed.state === 'up') fuzzed.instanceId = id;
      });
    }, 1_000);
    const fuzzRun = fuzzer?.run();
    const sender = setInterval(() => {
      for (const peer of peers) {
        for (const session of peer.all) {
          for (const [to, conn] of session.conns) send(peer, session, to, conn, false);
        }
      }
    }, 250);
    // Reconnects (same ID) at random moments; a quarter of them race two connections.
    const reconnector = setInterval(
      () => {
        const peer = rng.pick(peers);
        const old = peer.current;
        if (!old?.alive) return;
        const race = rng.chance(0.25);
        const first = peer.sessions + 1;
        void startSession(peer, true);
        if (race) {
          void startSession(peer, false);
          // Two connections of one ID racing: the checker wants exactly one of them to win.
          history.write('race', { peer: peer.id, a: first, b: first + 1 });
        }
        later(
          () => {
            history.write('close', { peer: peer.id, s: old.s });
            void old.client.close();
          },
          rng.int(0, 300),
        );
      },
      Math.max(100, Math.round(8_000 / options.clients)),
    );

    // --- faults ---------------------------------------------------------------
    const origin = Date.now();
    const faultRuns = schedule.map(async (fault) => {
      await sleep(fault.at);
      const slot = slots[fault.pod] as PodSlot;
      const run = async (): Promise<void> => {
        history.write('fault', { id: fault.id, kind: fault.kind, pod: slot.name, phase: 'start' });
        log(`+${Date.now() - origin} ms fault ${fault.id} ${fault.kind} ${slot.name} ${fault.ms} ms`);
        try {
          switch (fault.kind) {
            case 'pod-kill':
              await stopSlot(slot, 'SIGKILL');
              await sleep(fault.ms / 2);
              await startSlot(slot);
              break;
            case 'pod-pause':
              slot.state = 'paused';
              slot.pod?.process.kill('SIGSTOP');
              await sleep(fault.ms);
              slot.pod?.process.kill('SIGCONT');
              slot.state = 'up';
              break;
            case 'mesh-partition':
              slot.meshProxy.cut();
              await sleep(fault.ms);
              slot.meshProxy.restore();
              break;
            case 'rolling-restart':
              // One pod lock at a time (never two held): no deadlock with single-pod faults.
              for (const each of slots) {
                await withLock(each, async () => {
                  await stopSlot(each, 'SIGTERM');
                  await startSlot(each);
                });
              }
              break;
            default:
              await redisSide?.fault(fault.kind, fault.pod, fault.ms, rng);
          }
        } catch (err) {
          history.write('fault-error', { id: fault.id, error: String(err) });
        }
        history.write('fault', { id: fault.id, kind: fault.kind, pod: slot.name, phase: 'end' });
      };
      await (fault.kind === 'rolling-restart' ? run() : withLock(slot, run));
    });
    await Promise.all(faultRuns);
    if (fuzzer && fuzzRun) {
      // The fuzzer may finish its count after the faults (traffic still flows); bounded all the same.
      await Promise.race([fuzzRun, sleep(options.fuzzAfterMs ?? Math.max(30_000, options.durationMs / 2))]);
      fuzzer.stop();
      fuzzReport = await fuzzRun;
      history.write('fuzz', { pod: fuzzed.name, ...fuzzReport });
      log(`fuzz: ${JSON.stringify(fuzzReport)}`);
    }
    clearInterval(instanceTimer);
    clearInterval(reconnector);
    history.write('heal', {});
    log(`+${Date.now() - origin} ms healed; waiting for convergence`);

    // --- convergence: every current session has all partners open ------------
    const pending = new Set(peers);
    await waitUntil(async () => {
      for (const peer of pending) {
        const session = peer.current;
        if (session?.alive && peer.partners.every((partner) => session.conns.has(partner))) {
          history.write('ready', { peer: peer.id, s: session.s });
          pending.delete(peer);
        }
      }
      return pending.size === 0;
    }, options.boundMs * 2);
    clearInterval(sender);
    for (const peer of peers) {
      const session = peer.current;
      if (!session?.alive) continue;
      for (const [to, conn] of session.conns) send(peer, session, to, conn, true);
    }
    // Time for the final messages to land before the history closes.
    await sleep(Math.min(options.boundMs, 3_000));
    clearInterval(rssTimer);
    stalls?.stop();
    history.write('end', {});
  } finally {
    stopping = true;
    stalls?.stop();
    fuzzer?.stop();
    for (const timer of timers) clearTimeout(timer);
    for (const peer of peers) for (const session of peer.all) session.client.terminate();
    for (const peer of peers) peer.current?.client.terminate();
    for (const slot of slots) {
      slot.pod?.process.kill('SIGCONT');
      await slot.pod?.process.stop();
      await slot.meshProxy.close();
    }
    await redisSide?.stop().catch(() => {});
    await stopAllRedis();
    await history.close();
    process.off('exit', killPods);
  }
  return { historyFile, schedule, ...(fuzzReport ? { fuzz: fuzzReport } : {}) };
}
