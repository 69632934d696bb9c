import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket, type ClientOptions } from 'ws';
import { generateToken } from '../../src/auth/hmac-token.js';
import { dialHeaders } from '../../src/cluster/mesh-auth.js';
import { encodeAuth, encodePeerLists, encodeTransport } from '../../src/protocol/codec.js';
import { MessageType, TRANSPORT_HEADER_SIZE } from '../../src/protocol/constants.js';
import { peerIdFromIdentifier, type PeerKey } from '../../src/protocol/peer-id.js';
import { MESH_MUTATIONS, RELAY_MUTATIONS, mutate, type Mutation } from './mutations.js';
import { Rng } from './rng.js';

/*
 * The live fuzzer: mutated frames at one running relay of the chaos cluster, before auth,
 * after auth, and on its mesh port with valid mesh credentials, while the chaos traffic
 * flows. After every frame a probe tells whether the connection survived it, so each
 * outcome is counted by kind. Two bystanders of its own (a sink and a watcher) sit on the
 * target; their closes are reported (the checker judges them against the fault windows),
 * and a relay crash shows up as an unscheduled exit in the history.
 *
 * Fuzz traffic never names a chaos client: destinations are the sink, the fuzzer's own
 * peers, or random IDs. A valid mesh frame never carries a shed record (that would be a
 * real rebalancing order, closing bystanders by design).
 */

export interface FuzzTarget {
  relayPort: number;
  meshPort: number;
  instanceId: string;
}

export interface FuzzOptions {
  seed: number;
  frames: number;
  authSecret: string;
  clusterSecret: string;
  /** The pod to fuzz right now; undefined while it is down or not known yet. */
  target: () => FuzzTarget | undefined;
  onBystanderClosed: (who: string, code: number) => void;
}

export interface FuzzReport {
  frames: number;
  byPhase: Record<Phase, number>;
  /** "<phase>/<mutation>/<outcome>" -> count. */
  outcomes: Record<string, number>;
  framesPerSecond: number;
  bystanderCloses: number;
}

type Phase = 'pre-auth' | 'post-auth' | 'mesh';

const PROBE_TIMEOUT_MS = 5_000;
/**
 * Frames in flight per phase. Each worker still sends one frame and waits for its probe, so
 * every outcome belongs to exactly one frame; throughput comes from running several at once
 * (one round trip per frame capped a single worker at ~100-200 frames/s).
 */
const WORKERS: Record<Phase, number> = { 'pre-auth': 3, 'post-auth': 8, mesh: 8 };
/** Source addresses rotate over 127.0.0.2..: the per-IP connect limits then never touch the chaos clients (127.0.0.1). */
const SOURCE_HOSTS = Array.from({ length: 60 }, (_, i) => `127.0.0.${i + 2}`);

function randomPeerId(rng: Rng): Buffer {
  return peerIdFromIdentifier(`fuzz-random-${rng.int(0, 2 ** 31)}`);
}

/** One WebSocket with an inbox of awaited conditions. */
class Wire {
  readonly ws: WebSocket;
  closeCode: number | undefined;
  readonly #waiters = new Set<{ match: (m: Buffer) => boolean; done: (ok: boolean) => void }>();

  constructor(ws: WebSocket, onMessage?: (m: Buffer) => void) {
    this.ws = ws;
    ws.on('error', () => {});
    ws.on('message', (data: Buffer) => {
      if (data.length === 2 && data[1] === MessageType.HealthCheck) ws.send(data);
      onMessage?.(data);
      for (const waiter of this.#waiters) if (waiter.match(data)) waiter.done(true);
    });
    ws.once('close', (code) => {
      this.closeCode = code;
      for (const waiter of this.#waiters) waiter.done(false);
    });
  }

  static async open(url: string, options: ClientOptions): Promise<Wire | undefined> {
    const ws = new WebSocket(url, {
      perMessageDeflate: false,
      handshakeTimeout: PROBE_TIMEOUT_MS,
      ...options,
    });
    const wire = new Wire(ws);
    const opened = await new Promise<boolean>((resolve) => {
      ws.once('open', () => resolve(true));
      ws.once('error', () => resolve(false));
      ws.once('unexpected-response', (_req, res) => {
        res.resume();
        resolve(false);
      });
    });
    if (!opened) ws.terminate();
    return opened ? wire : undefined;
  }

  get open(): boolean {
    return this.closeCode === undefined && this.ws.readyState === WebSocket.OPEN;
  }

  /** Resolves true when a message matches, false on close or timeout. */
  until(match: (m: Buffer) => boolean, timeoutMs = PROBE_TIMEOUT_MS): Promise<boolean | 'timeout'> {
    if (!this.open) return Promise.resolve(false);
    return new Promise((resolve) => {
      const waiter = {
        match,
        done: (ok: boolean | 'timeout') => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          resolve(ok);
        },
      };
      const timer = setTimeout(() => waiter.done('timeout'), timeoutMs);
      this.#waiters.add(waiter);
    });
  }
}

const isPeersOnlineFor = (peerId: Buffer) => (m: Buffer) =>
  m[1] === MessageType.PeersOnline && m.indexOf(peerId, 2) >= 0;

export class LiveFuzzer {
  readonly #options: FuzzOptions;
  readonly #rng: Rng;
  readonly #outcomes: Record<string, number> = {};
  readonly #byPhase: Record<Phase, number> = { 'pre-auth': 0, 'post-auth': 0, mesh: 0 };
  #frames = 0;
  #bystanderCloses = 0;
  #stopped = false;
  #connections = 0;
  readonly #sinkId = peerIdFromIdentifier(`fuzz-sink-${randomBytes(4).toString('hex')}`);
  readonly #sinkProbes = new Map<string, () => void>();
  #sink: Wire | undefined;
  readonly #bystanders = new Set<Wire>();

  constructor(options: FuzzOptions) {
    this.#options = options;
    this.#rng = new Rng(options.seed ^ 0xf022);
  }

  /** Runs until `frames` were sent or stop(); resolves with the counts. */
  async run(): Promise<FuzzReport> {
    const started = performance.now();
    const bystanders = this.#keepBystanders();
    const numbered = (count: number) => Array.from({ length: count }, (_, i) => i + 1);
    const workers = [
      ...numbered(WORKERS['pre-auth']).map(() => this.#preAuthWorker()),
      ...numbered(WORKERS['post-auth']).map((n) => this.#postAuthWorker(n)),
      ...numbered(WORKERS.mesh).map((n) => this.#meshWorker(n)),
    ];
    await Promise.all(workers);
    this.stop();
    await bystanders;
    const seconds = (performance.now() - started) / 1000;
    return {
      frames: this.#frames,
      byPhase: { ...this.#byPhase },
      outcomes: { ...this.#outcomes },
      framesPerSecond: Math.round(this.#frames / seconds),
      bystanderCloses: this.#bystanderCloses,
    };
  }

  stop(): void {
    this.#stopped = true;
    for (const wire of this.#bystanders) wire.ws.terminate();
  }

  get #done(): boolean {
    return this.#stopped || this.#frames >= this.#options.frames;
  }

  #count(phase: Phase, mutation: Mutation | 'text', outcome: string, frames: number): void {
    this.#frames += frames;
    this.#byPhase[phase] += frames;
    const key = `${phase}/${mutation}/${outcome}`;
    this.#outcomes[key] = (this.#outcomes[key] ?? 0) + frames;
  }

  #relayUrl(target: FuzzTarget): string {
    return `ws://127.0.0.1:${target.relayPort}/relay`;
  }

  #source(): string {
    return SOURCE_HOSTS[this.#connections++ % SOURCE_HOSTS.length] as string;
  }

  async #authenticated(
    target: FuzzTarget,
    peerId: Buffer,
    onMessage?: (m: Buffer) => void,
  ): Promise<Wire | undefined> {
    const ws = new WebSocket(this.#relayUrl(target), {
      perMessageDeflate: false,
      handshakeTimeout: PROBE_TIMEOUT_MS,
      localAddress: this.#source(),
    });
    const wire = new Wire(ws, onMessage);
    const opened = await new Promise<boolean>((resolve) => {
      ws.once('open', () => resolve(true));
      ws.once('close', () => resolve(false));
    });
    if (!opened) return undefined;
    ws.send(encodeAuth(peerId, generateToken(this.#options.authSecret, 3600)));
    if ((await wire.until((m) => m[1] === MessageType.AuthResponse)) !== true) {
      ws.terminate();
      return undefined;
    }
    return wire;
  }

  /** The sink (receives fuzzed transport) and a watcher subscribed to it; both reconnect when their pod goes. */
  async #keepBystanders(): Promise<void> {
    const keep = async (who: 'sink' | 'watcher'): Promise<void> => {
      const id =
        who === 'sink'
          ? this.#sinkId
          : peerIdFromIdentifier(`fuzz-watcher-${randomBytes(4).toString('hex')}`);
      while (!this.#stopped) {
        const target = this.#options.target();
        const wire =
          target &&
          (await this.#authenticated(target, id, (m) => {
            if (who !== 'sink' || m[1] !== MessageType.Transport) return;
            this.#sinkProbes.get(m.subarray(TRANSPORT_HEADER_SIZE).toString('latin1'))?.();
          }));
        if (!wire) {
          await sleep(300);
          continue;
        }
        this.#bystanders.add(wire);
        if (this.#stopped) wire.ws.terminate();
        if (who === 'sink') this.#sink = wire;
        else
          wire.ws.send(
            encodePeerLists(MessageType.SubscribePeerState, [
              this.#sinkId.toString('latin1') as PeerKey,
            ])[0] as Buffer,
          );
        await new Promise((resolve) => wire.ws.once('close', resolve));
        this.#bystanders.delete(wire);
        if (!this.#stopped) {
          this.#bystanderCloses++;
          this.#options.onBystanderClosed(who, wire.closeCode ?? 0);
        }
      }
    };
    await Promise.all([keep('sink'), keep('watcher')]);
  }

  /** Valid relay messages an authenticated client may send, to mutate. */
  #relayFrame(selfId: Buffer): Buffer {
    const rng = this.#rng;
    const payload = randomBytes(rng.int(0, 200));
    switch (rng.int(0, 6)) {
      case 0:
        return encodeTransport(this.#sinkId, payload);
      case 1:
        return encodeTransport(randomPeerId(rng), payload);
      case 2:
        return encodeTransport(selfId, payload);
      case 3:
        return Buffer.from([1, MessageType.HealthCheck]);
      case 4:
        return encodePeerLists(MessageType.SubscribePeerState, [
          randomPeerId(rng).toString('latin1') as PeerKey,
        ])[0] as Buffer;
      default:
        return encodePeerLists(MessageType.UnsubscribePeerState, [
          randomPeerId(rng).toString('latin1') as PeerKey,
        ])[0] as Buffer;
    }
  }

  async #preAuthWorker(): Promise<void> {
    const rng = this.#rng;
    while (!this.#done) {
      const target = this.#options.target();
      if (!target) {
        await sleep(200);
        continue;
      }
      const wire = await Wire.open(this.#relayUrl(target), { localAddress: this.#source() });
      if (!wire) {
        await sleep(100);
        continue;
      }
      const mutation = rng.pick([...RELAY_MUTATIONS, 'text'] as const);
      const auth = encodeAuth(randomPeerId(rng), generateToken(this.#options.authSecret, 3600));
      const frame = mutation === 'text' ? auth : mutate(rng, mutation, auth);
      wire.ws.send(frame, { binary: mutation !== 'text' });
      if (mutation === 'duplicate') wire.ws.send(frame);
      // The relay must close at once without a word, or answer a still-valid auth; 10 s is its handshake limit.
      const answer = await wire.until((m) => m[1] === MessageType.AuthResponse, 11_000);
      const outcome =
        answer === true ? 'auth-accepted' : answer === 'timeout' ? 'no-answer' : `closed-${wire.closeCode}`;
      this.#count('pre-auth', mutation, outcome, mutation === 'duplicate' ? 2 : 1);
      wire.ws.terminate();
    }
  }

  async #postAuthWorker(worker: number): Promise<void> {
    const rng = this.#rng;
    let wire: Wire | undefined;
    let selfId: Buffer = Buffer.alloc(0);
    let generation = 0;
    while (!this.#done) {
      if (!wire?.open) {
        wire?.ws.terminate();
        const target = this.#options.target();
        selfId = peerIdFromIdentifier(`fuzz-post-${worker}-${generation++}-${this.#options.seed}`);
        wire = target && (await this.#authenticated(target, selfId));
        if (!wire) {
          await sleep(200);
          continue;
        }
      }
      const mutation = rng.pick([...RELAY_MUTATIONS, 'text'] as const);
      const base = rng.chance(0.05)
        ? encodeAuth(selfId, generateToken(this.#options.authSecret, 3600))
        : this.#relayFrame(selfId);
      const frame: Buffer = mutation === 'text' ? base : mutate(rng, mutation, base);
      wire.ws.send(frame, { binary: mutation !== 'text' });
      if (mutation === 'duplicate') wire.ws.send(frame);
      // Probe: subscribing to ourselves is answered at once while the session lives.
      wire.ws.send(
        encodePeerLists(MessageType.SubscribePeerState, [selfId.toString('latin1') as PeerKey])[0] as Buffer,
      );
      const answer = await wire.until(isPeersOnlineFor(selfId));
      const outcome =
        answer === true ? 'kept' : answer === 'timeout' ? 'no-answer' : `closed-${wire.closeCode}`;
      this.#count('post-auth', mutation, outcome, mutation === 'duplicate' ? 2 : 1);
      if (answer !== true) wire.ws.terminate();
    }
    wire?.ws.terminate();
  }

  /** A valid mesh frame: one to three records (transport to the sink or a random ID, "not here"); never a shed. */
  #meshFrame(from: string): Buffer {
    const rng = this.#rng;
    const records: Buffer[] = [];
    for (let n = rng.int(1, 4); n > 0; n--) {
      if (rng.chance(0.7)) {
        const destination = rng.chance(0.5) ? this.#sinkId : randomPeerId(rng);
        const message = encodeTransport(peerIdFromIdentifier(from), randomBytes(rng.int(0, 200)));
        records.push(meshRecord(1, Buffer.concat([destination, message])));
      } else records.push(meshRecord(2, randomPeerId(rng)));
    }
    return Buffer.concat(records);
  }

  async #meshWorker(worker: number): Promise<void> {
    const rng = this.#rng;
    let wire: Wire | undefined;
    let from = '';
    let probes = 0;
    while (!this.#done) {
      const target = this.#options.target();
      if (!wire?.open) {
        wire?.ws.terminate();
        from = `fuzz-mesh-${worker}-${randomBytes(4).toString('hex')}`;
        const sinkUp = this.#sink?.open === true;
        wire =
          target && sinkUp
            ? await Wire.open(`ws://127.0.0.1:${target.meshPort}/mesh`, {
                headers: dialHeaders(this.#options.clusterSecret, from, target.instanceId).headers,
              })
            : undefined;
        if (!wire) {
          await sleep(300);
          continue;
        }
      }
      const mutation = rng.pick([...MESH_MUTATIONS, 'text'] as const);
      const base = this.#meshFrame(from);
      const frame = mutation === 'text' ? base : withoutShed(mutate(rng, mutation, base));
      wire.ws.send(frame, { binary: mutation !== 'text' });
      if (mutation === 'duplicate') wire.ws.send(frame);
      // Probe: a valid transport record to the sink arrives only if the link survived the frame.
      const tag = `probe-${worker}-${++probes}`;
      const arrived = new Promise<true>((resolve) => this.#sinkProbes.set(tag, () => resolve(true)));
      const probe = meshRecord(
        1,
        Buffer.concat([
          this.#sinkId,
          encodeTransport(peerIdFromIdentifier(from), Buffer.from(tag, 'latin1')),
        ]),
      );
      wire.ws.send(probe);
      const answer = await Promise.race([arrived, wire.until(() => false)]);
      this.#sinkProbes.delete(tag);
      const outcome =
        answer === true ? 'kept' : answer === 'timeout' ? 'no-answer' : `closed-${wire.closeCode}`;
      this.#count('mesh', mutation, outcome, mutation === 'duplicate' ? 2 : 1);
      if (answer !== true) wire.ws.terminate();
    }
    wire?.ws.terminate();
  }
}

function meshRecord(type: number, body: Buffer): Buffer {
  const header = Buffer.from([type, body.length >>> 8, body.length & 0xff]);
  return Buffer.concat([header, body]);
}

/** Turns every record header that says "shed" (type 3) into an unknown type, walking the records as the wire format defines them. */
function withoutShed(frame: Buffer): Buffer {
  for (let offset = 0; offset + 3 <= frame.length; offset += 3 + frame.readUInt16BE(offset + 1)) {
    if (frame[offset] === 3) frame[offset] = 0x33;
  }
  return frame;
}
