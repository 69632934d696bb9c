import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PeerConnection } from '../../src/client/peer-connection.js';
import { RelayClient } from '../../src/client/relay-client.js';
import type { RelayClientOptions } from '../../src/client/relay-client-options.js';
import { isRelayClientError } from '../../src/client/relay-client-error.js';
import { closeReasonWithin, nextPayload } from './support/peer-connection-helpers.js';
import {
  startClusterTarget,
  startNetbirdTarget,
  startStandaloneTarget,
  type RelayTarget,
} from './support/relay-targets.js';

/**
 * The client against real relays: ours standalone (in-process), ours as a
 * cluster of three processes, and NetBird's own relay binary. Behaviour of
 * NetBird's relay is recorded, never asserted.
 */

const RACE_ITERATIONS = Number(process.env.CLIENT_RACE_ITERATIONS ?? 1_000);

const targets: [string, () => Promise<RelayTarget>][] = [
  ['standalone', startStandaloneTarget],
  ['cluster', startClusterTarget],
  ['netbird', startNetbirdTarget],
];

describe.each(targets)('relay client against %s', (_name, startTarget) => {
  let target: RelayTarget;
  const clients: RelayClient[] = [];

  beforeAll(async () => {
    target = await startTarget();
  }, 600_000);

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await target?.stop();
  });

  async function connect(
    peer: string,
    urlIndex: number,
    extra: Partial<RelayClientOptions> = {},
  ): Promise<RelayClient> {
    const client = await RelayClient.connect({
      url: target.urls[urlIndex % target.urls.length] as string,
      peer,
      auth: { secret: target.secret },
      ...extra,
    });
    clients.push(client);
    return client;
  }

  it('authenticates and reports the instance URL', async () => {
    const client = await connect(`${target.name}-hello`, 0);
    expect(client.ready).toBe(true);
    expect(client.instanceUrl).toMatch(/^rels?:\/\//);
    await client.close();
    expect(client.state).toBe('closed');
  });

  it('opens connections both ways and carries data both ways', async () => {
    const a = await connect(`${target.name}-data-a`, 0);
    const b = await connect(`${target.name}-data-b`, 1);
    const [ab, ba] = await Promise.all([
      a.openConn(`${target.name}-data-b`),
      b.openConn(`${target.name}-data-a`),
    ]);
    const toB = nextPayload(ba);
    ab.send(Buffer.from('a to b'));
    expect((await toB).toString()).toBe('a to b');
    const received: string[] = [];
    const iterated = (async () => {
      for await (const payload of ab) {
        received.push(payload.toString());
        if (received.length === 3) break;
      }
    })();
    for (const text of ['one', 'two', 'three']) ba.send(Buffer.from(text));
    await iterated;
    expect(received).toEqual(['one', 'two', 'three']);
    // Breaking out of the loop closed A's side; B's connection stays until told otherwise.
    expect(ab.closeReason).toBe('closed_by_owner');
    await expect(a.openConn(`${target.name}-data-b`)).resolves.toBeDefined();
  });

  it('closes a connection when the peer goes offline and reopens when it is back', async () => {
    const a = await connect(`${target.name}-offline-a`, 0);
    let b = await connect(`${target.name}-offline-b`, 1);
    const ab = await a.openConn(`${target.name}-offline-b`);
    await expect(a.openConn(`${target.name}-offline-b`)).rejects.toThrow('connection already exists');
    await b.close();
    expect(await closeReasonWithin(ab, 5_000)).toBe('peer_offline');

    const reopened = a.openConn(`${target.name}-offline-b`, { timeoutMs: 10_000 });
    b = await connect(`${target.name}-offline-b`, 2);
    const abAgain = await reopened;
    const ba = await b.openConn(`${target.name}-offline-a`);
    const got = nextPayload(ba);
    abAgain.send(Buffer.from('back again'));
    expect((await got).toString()).toBe('back again');
  });

  it('hands a message from a peer with no open connection to a later open', async () => {
    const a = await connect(`${target.name}-early-a`, 0);
    const b = await connect(`${target.name}-early-b`, 1);
    const ba = await b.openConn(`${target.name}-early-a`);
    const buffered = new Promise<void>((resolve) => {
      let seen = 0;
      a.on('earlyMessage', () => ++seen === 2 && resolve());
    });
    ba.send(Buffer.from('first'));
    ba.send(Buffer.from('second (kept: newest wins)'));
    await buffered;
    const ab = await a.openConn(`${target.name}-early-b`);
    expect((await nextPayload(ab)).toString()).toBe('second (kept: newest wins)');
  });

  it(`reconnect race x${RACE_ITERATIONS}: the other side is told offline, then reopens to the new session`, async () => {
    const counts = { noticed: 0, missed: 0, lateNotice: 0, alreadyExists: 0, dataFailures: 0, iterations: 0 };
    const byMode = { overlap: { noticed: 0, missed: 0 }, concurrent: { noticed: 0, missed: 0 } };
    // Ours must deliver every notice: a generous grace costs nothing when it does. NetBird drops
    // the notice in this race, so a short grace keeps 1,000 misses affordable.
    const graceMs = target.ours ? 3_000 : 30;
    const a = await connect(`${target.name}-race-a`, 0);
    let b = await connect(`${target.name}-race-b`, 1);
    let ab = await a.openConn(`${target.name}-race-b`);
    await b.openConn(`${target.name}-race-a`);
    const started = Date.now();
    for (let i = 0; i < RACE_ITERATIONS; i++) {
      const mode = i % 2 === 0 ? 'overlap' : 'concurrent';
      const old = b;
      const next = new RelayClient({
        url: target.urls[1 + (i % Math.max(1, target.urls.length - 1))] ?? (target.urls[0] as string),
        peer: `${target.name}-race-b`,
        auth: { secret: target.secret },
      });
      if (mode === 'overlap') {
        // The new session registers while the old one is still connected (network change).
        await next.connect();
      } else {
        await Promise.all([old.close(), next.connect()]);
      }
      b = next;
      const told = await closeReasonWithin(ab, graceMs);
      if (told === 'peer_offline') {
        counts.noticed++;
        byMode[mode].noticed++;
      } else {
        counts.missed++;
        byMode[mode].missed++;
      }
      let reopened: PeerConnection;
      try {
        reopened = await a.openConn(`${target.name}-race-b`, { timeoutMs: 5_000 });
      } catch (err) {
        if (!isRelayClientError(err, 'connection_already_exists')) throw err;
        counts.alreadyExists++;
        ab.close();
        reopened = await a.openConn(`${target.name}-race-b`, { timeoutMs: 5_000 });
      }
      if (told !== 'peer_offline' && ab.closeReason === 'peer_offline') counts.lateNotice++;
      ab = reopened;
      const ba = await b.openConn(`${target.name}-race-a`, { timeoutMs: 5_000 });
      try {
        const atB = nextPayload(ba, 2_000);
        ab.send(Buffer.from(`ping ${i}`));
        expect((await atB).toString()).toBe(`ping ${i}`);
        const atA = nextPayload(ab, 2_000);
        ba.send(Buffer.from(`pong ${i}`));
        expect((await atA).toString()).toBe(`pong ${i}`);
      } catch {
        counts.dataFailures++;
      }
      if (mode === 'overlap') await old.close(); // late clean-up of the replaced session
      counts.iterations++;
    }
    clients.push(b);
    const summary = { target: target.name, ms: Date.now() - started, graceMs, ...counts, byMode };
    console.log(`[client reconnect race] ${JSON.stringify(summary)}`);
    if (target.ours) {
      expect(counts).toEqual({
        noticed: RACE_ITERATIONS,
        missed: 0,
        lateNotice: 0,
        alreadyExists: 0,
        dataFailures: 0,
        iterations: RACE_ITERATIONS,
      });
    } else {
      expect(counts.iterations).toBe(RACE_ITERATIONS);
    }
  }, 600_000);
});
