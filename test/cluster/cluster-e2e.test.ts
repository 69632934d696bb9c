import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MessageType, TRANSPORT_HEADER_SIZE } from '../../src/protocol/constants.js';
import { printedPeer, RedisKeys } from '../../src/registry/redis/keys.js';
import type { RelayTestClient } from '../support/relay-test-client.js';
import { freePort } from '../support/free-port.js';
import { RedisServer, stopAllRedis } from '../support/redis-server.js';
import { eventually } from './cluster-test-kit.js';
import { NO_PER_IP_LIMITS } from '../support/loopback-limits.js';
import {
  MeshCutter,
  awaitOnline,
  connectPeer,
  expectPeerState,
  expectTransport,
  startPod,
  watchPeer,
  type Pod,
} from './cluster-pods.js';

/**
 * Three relay processes (dist/cli.js) and a private Redis: the cluster as a
 * NetBird client sees it. Build first: npm run build.
 */
const PREFIX = 'nbe2e';
const keys = new RedisKeys(PREFIX);
let redis: RedisServer;
let inspect: Redis;
let cutter: MeshCutter;
const pods: Pod[] = [];
const clients: RelayTestClient[] = [];

async function peerOn(pod: Pod, identifier: string): Promise<RelayTestClient> {
  const client = await connectPeer(pod, identifier);
  clients.push(client);
  return client;
}

async function instanceOf(pod: Pod): Promise<string> {
  return await eventually(async () => (await inspect.hget(keys.pods, pod.name)) ?? undefined);
}

beforeAll(async () => {
  redis = await RedisServer.start();
  inspect = new Redis(redis.url, { maxRetriesPerRequest: null });
  inspect.on('error', () => {});
  // 1,000 reconnects from 127.0.0.1 in a few seconds: the per-IP limits are not what is tested here
  const env = { NB_REDIS_URL: redis.url, NB_REDIS_KEY_PREFIX: PREFIX, ...NO_PER_IP_LIMITS };
  // pod-2's mesh is reached through a forwarder the link test can cut.
  const pod2MeshPort = await freePort();
  cutter = await MeshCutter.start(pod2MeshPort);
  // One after the other, each kept as soon as it runs, so afterAll stops whatever started.
  pods.push(await startPod('pod-1', env));
  pods.push(await startPod('pod-2', env, { meshPort: pod2MeshPort, advertisePort: cutter.port }));
  pods.push(await startPod('pod-3', env));
  // Every pod linked to both others: the mesh is complete before the tests cut anything.
  await eventually(async () => {
    const links = await Promise.all(
      pods.map(async (pod) => /relay_mesh_links_up (\d+)/.exec(await pod.process.metrics())?.[1]),
    );
    return links.every((count) => count === '2') ? true : undefined;
  }, 10_000);
}, 60_000);

afterEach((context) => {
  if (context.task.result?.state === 'fail' && process.env.TEST_DUMP_PODS) {
    for (const pod of pods) console.log(`==== ${pod.name}\n${pod.process.output}`);
  }
});

afterAll(async () => {
  for (const client of clients) client.terminate();
  await Promise.all(pods.map((pod) => pod.process.stop()));
  await cutter?.close();
  inspect?.disconnect();
  await stopAllRedis();
});

describe('cluster of three relay processes', () => {
  it('relays transport between peers on different pods, both ways, and announces online/offline across pods', async () => {
    const [pod1, pod2] = pods as [Pod, Pod];
    const alice = await peerOn(pod1, 'e2e-alice');
    const bob = await peerOn(pod2, 'e2e-bob');
    expect(alice.instanceUrl).toBe(bob.instanceUrl);
    await awaitOnline(alice, bob);
    await awaitOnline(bob, alice);
    alice.sendTransport(bob.peerId, Buffer.from('hello bob'));
    await expectTransport(bob, alice, 'hello bob');
    bob.sendTransport(alice.peerId, Buffer.from('hello alice'));
    await expectTransport(alice, bob, 'hello alice');

    bob.close();
    await expectPeerState(alice, MessageType.PeersWentOffline, bob);
    alice.close();
  });

  it('survives 1,000 cross-pod reconnects: offline before online every time, traffic reaches the newest session', async () => {
    const [pod1, pod2, pod3] = pods as [Pod, Pod, Pod];
    const watcher = await peerOn(pod1, 'e2e-watcher');
    let current = await connectPeer(pod2, 'e2e-roamer');
    await watchPeer(watcher, current);
    const started = Date.now();
    for (let i = 1; i <= 1_000; i++) {
      const next = await connectPeer(i % 2 ? pod3 : pod2, 'e2e-roamer');
      // The old session's pod learns of the new one and closes it; the client may also give up first.
      await expectPeerState(watcher, MessageType.PeersWentOffline, next);
      await expectPeerState(watcher, MessageType.PeersOnline, next);
      // Online interest is one-shot: subscribe again (answered at once: online).
      await awaitOnline(watcher, next);
      watcher.sendTransport(next.peerId, Buffer.from(`ping ${i}`));
      await expectTransport(next, watcher, `ping ${i}`);
      // The replaced session: its pod closed it (or is about to); a late close is a stale clean-up.
      current.terminate();
      current = next;
    }
    console.log(`1,000 cross-pod reconnects took ${Date.now() - started} ms`);
    current.close();
    await expectPeerState(watcher, MessageType.PeersWentOffline, current);
    watcher.close();
  }, 180_000);

  it('ends a replaced session on its old pod without touching Redis or the wire', async () => {
    const [pod1, pod2, pod3] = pods as [Pod, Pod, Pod];
    const watcher = await peerOn(pod1, 'e2e-watcher-2');
    const old = await connectPeer(pod2, 'e2e-stale');
    await watchPeer(watcher, old);
    const lost = (): Promise<number> =>
      pod2.process.metric('relay_session_closes_total', { reason: 'registration_lost' });
    const lostBefore = await lost();
    const ignoredBefore = await pod2.process.metric('relay_registry_stale_cleanups_ignored_total');
    const fresh = await peerOn(pod3, 'e2e-stale');
    await expectPeerState(watcher, MessageType.PeersWentOffline, fresh);
    await expectPeerState(watcher, MessageType.PeersOnline, fresh);
    const routeKey = keys.route(printedPeer(fresh.peerKey));
    const stored = await inspect.get(routeKey);
    expect(stored).toMatch(new RegExp(`^\\d+\\|${await instanceOf(pod3)}\\|`));
    // pod-2 hears offline(old token) and ends the old session itself: registration lost, so it
    // runs no compare-and-delete (none is attempted, none is refused).
    await expect.poll(lost).toBe(lostBefore + 1);
    await old.closed;
    expect(await pod2.process.metric('relay_registry_stale_cleanups_ignored_total')).toBe(ignoredBefore);
    expect(await inspect.get(routeKey)).toBe(stored);
    expect(watcher.pending()).toBe(0);
    watcher.sendTransport(fresh.peerId, Buffer.from('still here'));
    await expectTransport(fresh, watcher, 'still here');
    fresh.close();
    await expectPeerState(watcher, MessageType.PeersWentOffline, fresh);
    expect(await inspect.exists(routeKey)).toBe(0);
    watcher.close();
  });

  it('heals a cut mesh link without losing routes', async () => {
    const [pod1, pod2] = pods as [Pod, Pod];
    const alice = await peerOn(pod1, 'e2e-cut-alice');
    const bob = await peerOn(pod2, 'e2e-cut-bob');
    await awaitOnline(alice, bob);
    alice.sendTransport(bob.peerId, Buffer.from('before'));
    await expectTransport(bob, alice, 'before');
    cutter.cut();
    // The outage's length, not a wait for an event: which links cross the cut depends on who dialled first.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    cutter.restore();
    const started = Date.now();
    // Keep sending until it gets through: packets sent while the link is down may be lost (like UDP).
    await eventually(async () => {
      alice.sendTransport(bob.peerId, Buffer.from('after'));
      try {
        await expectTransport(bob, alice, 'after', 200);
        return true;
      } catch {
        return undefined;
      }
    }, 10_000);
    console.log(`mesh link healed ${Date.now() - started} ms after the network came back`);
    bob.sendTransport(alice.peerId, Buffer.from('back'));
    // Drain duplicates of "after" that were queued while the link came back.
    for (;;) {
      const message = await alice.next();
      if (message.subarray(TRANSPORT_HEADER_SIZE).toString() === 'back') break;
    }
    expect(alice.pending()).toBe(0);
    alice.close();
    bob.close();
  });

  it('keeps relaying while Redis is down, refuses new connections, and converges after Redis restarts empty', async () => {
    const [pod1, pod2, pod3] = pods as [Pod, Pod, Pod];
    const alice = await peerOn(pod1, 'e2e-outage-alice');
    const bob = await peerOn(pod2, 'e2e-outage-bob');
    const carol = await peerOn(pod3, 'e2e-outage-carol');
    await awaitOnline(alice, bob);
    await awaitOnline(alice, carol);

    await redis.kill();
    await eventually(async () => (await pod1.process.readiness()) === 503, 5_000);
    // Existing sessions keep relaying across pods on cached routes.
    alice.sendTransport(bob.peerId, Buffer.from('during outage'));
    await expectTransport(bob, alice, 'during outage');
    // A new connection is refused (closed without an auth response) while registrations cannot be stored.
    await expect(connectPeer(pod1, 'e2e-outage-newcomer')).rejects.toThrow();

    const restarted = Date.now();
    await redis.restart();
    const peers = [alice, bob, carol];
    await eventually(async () => {
      const present = await inspect.exists(...peers.map((peer) => keys.route(printedPeer(peer.peerKey))));
      const ready = await Promise.all(pods.map((pod) => pod.process.readiness()));
      return present === peers.length && ready.every((status) => status === 200) ? true : undefined;
    }, 10_000);
    const converged = Date.now() - restarted;
    console.log(`cluster converged ${converged} ms after redis restarted empty`);
    expect(converged).toBeLessThanOrEqual(3_000);
    bob.sendTransport(carol.peerId, Buffer.from('after restart'));
    await expectTransport(carol, bob, 'after restart');
    // A newcomer can register again and reach the others.
    const dave = await peerOn(pod3, 'e2e-outage-dave');
    await awaitOnline(dave, alice);
    dave.sendTransport(alice.peerId, Buffer.from('hi'));
    await expectTransport(alice, dave, 'hi');
    // No one was announced offline: the same sessions came back.
    expect(alice.pending()).toBe(0);
    for (const client of [alice, bob, carol, dave]) client.close();
  }, 60_000);

  it('forwards floods of distinct messages across pods byte for byte, beside a receiver that stalls', async () => {
    // Pod 3 assembles most 64 KiB mesh frames from several reads, in memory it reuses only once
    // its writes of that turn are all out: a reuse too early would show here as wrong bytes.
    const [pod1, , pod3] = pods as [Pod, Pod, Pod];
    const senders = [await peerOn(pod1, 'e2e-flood-s0'), await peerOn(pod1, 'e2e-flood-s1')];
    const receivers = [await peerOn(pod3, 'e2e-flood-r0'), await peerOn(pod3, 'e2e-flood-r1')];
    const stalled = await peerOn(pod3, 'e2e-flood-stalled');
    for (const receiver of [...receivers, stalled])
      for (const sender of senders) await awaitOnline(sender, receiver);
    stalled.ws.pause();
    const payload = (sender: number, seq: number): Buffer => {
      const p = Buffer.allocUnsafe(1000 + ((seq * 37) % 400));
      p.writeUInt32BE(seq, 0);
      for (let i = 4; i < p.length; i++) p[i] = (seq * 31 + sender * 101 + i) & 0xff;
      return p;
    };
    const nextSeq = new Map<RelayTestClient, number[]>();
    /** Checks one received message: from a known sender, the next (or a later) sequence number, exact bytes. */
    const check = (receiver: RelayTestClient, message: Buffer, gapsAllowed: boolean): void => {
      expect(message[1]).toBe(MessageType.Transport);
      const from = senders.findIndex((s) => s.peerId.equals(message.subarray(2, 38)));
      expect(from).toBeGreaterThanOrEqual(0);
      const body = message.subarray(TRANSPORT_HEADER_SIZE);
      const seq = body.readUInt32BE(0);
      const expected = nextSeq.get(receiver) ?? [0, 0];
      nextSeq.set(receiver, expected);
      if (gapsAllowed) expect(seq).toBeGreaterThanOrEqual(expected[from]!);
      else expect(seq).toBe(expected[from]);
      expected[from] = seq + 1;
      expect(body.equals(payload(from, seq))).toBe(true);
    };
    const ROUNDS = 30;
    const BURST = 100;
    // Every message to the stalled peer arrives or is counted as dropped: by pod 3's session queue,
    // or (if the link backs up) by pod 1's mesh queue.
    const dropped = async (): Promise<number> =>
      (await pod3.process.metric('relay_dropped_messages_total')) +
      (await pod1.process.metric('relay_mesh_forward_drops_total'));
    const droppedBefore = await dropped();
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < BURST; i++) {
        const seq = round * BURST + i;
        senders.forEach((sender, from) => {
          const body = payload(from, seq);
          for (const receiver of [...receivers, stalled]) sender.sendTransport(receiver.peerId, body);
        });
      }
      // Closed loop: the next burst goes once both receivers have all of this one.
      for (const receiver of receivers)
        for (let n = 0; n < BURST * senders.length; n++) check(receiver, await receiver.next(10_000), false);
    }
    // The stalled receiver's messages were written while its socket still took them, copied into its
    // queue when it did not, and the oldest dropped: what it reads now must still be exact.
    stalled.ws.resume();
    const sentToStalled = ROUNDS * BURST * senders.length;
    let readByStalled = 0;
    await expect
      .poll(
        async () => {
          while (stalled.pending() > 0) {
            check(stalled, await stalled.next(), true);
            readByStalled++;
          }
          return readByStalled + (await dropped()) - droppedBefore;
        },
        { timeout: 20_000, interval: 50 },
      )
      .toBe(sentToStalled);
    expect(readByStalled).toBeGreaterThan(0);
    for (const client of [...senders, ...receivers, stalled]) client.close();
  }, 60_000);

  it('announces the peers of a pod killed with -9 as offline on the other pods within 3 s', async () => {
    const [pod1, , pod3] = pods as [Pod, Pod, Pod];
    const watcher = await peerOn(pod1, 'e2e-kill-watcher');
    const victims = await Promise.all([0, 1, 2].map((i) => connectPeer(pod3, `e2e-kill-victim-${i}`)));
    for (const victim of victims) await awaitOnline(watcher, victim);
    const deadInstance = await instanceOf(pod3);
    const killed = Date.now();
    pod3.process.kill('SIGKILL');
    for (let i = 0; i < victims.length; i++) {
      const message = await watcher.next(10_000);
      expect(message[1]).toBe(MessageType.PeersWentOffline);
    }
    const detection = Date.now() - killed;
    console.log(`kill -9 detected and announced after ${detection} ms`);
    expect(detection).toBeLessThanOrEqual(3_000);
    // The reaper removes the dead instance's tables right after announcing its sessions.
    await eventually(async () =>
      (await inspect.exists(keys.instanceSessions(deadInstance))) === 0 ? true : undefined,
    );
    await eventually(async () =>
      (await inspect.zscore(keys.members, deadInstance)) === null ? true : undefined,
    );
    watcher.close();
  }, 30_000);
});
