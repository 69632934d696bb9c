import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MessageType, TRANSPORT_HEADER_SIZE, HEADER_SIZE } from '../../src/protocol/constants.js';
import { peerIdFromIdentifier } from '../../src/protocol/peer-id.js';
import { describeMessage, RelayTestClient } from '../support/relay-test-client.js';
import { startInProcessRelay, TEST_SECRET, type InProcessRelay } from '../support/in-process-relay.js';
import { NO_PER_IP_LIMITS } from '../support/loopback-limits.js';

let relay: InProcessRelay;
let counter = 0;
const uniqueName = (base: string): string => `${base}-${process.pid}-${++counter}`;
const connect = (identifier: string): Promise<RelayTestClient> =>
  RelayTestClient.connect(relay.url, { identifier, secret: TEST_SECRET });

beforeAll(async () => {
  // 1,000 reconnects from 127.0.0.1 in seconds: far more than one real address makes.
  relay = await startInProcessRelay(NO_PER_IP_LIMITS);
});
afterAll(async () => {
  await relay.stop();
});

describe('handshake', () => {
  it('answers auth with the configured instance URL as the first message', async () => {
    const client = await connect(uniqueName('alice'));
    expect(client.instanceUrl).toBe('rel://relay.test:443');
    client.close();
  });
});

describe('transport', () => {
  it('delivers both ways with the sender ID written in place of the destination', async () => {
    const alice = await connect(uniqueName('alice'));
    const bob = await connect(uniqueName('bob'));
    const payload = Buffer.from('wireguard packet');
    alice.sendTransport(bob.peerId, payload);
    const atBob = await bob.next();
    expect(atBob.subarray(0, 2)).toEqual(Buffer.from([1, MessageType.Transport]));
    expect(atBob.subarray(HEADER_SIZE, TRANSPORT_HEADER_SIZE)).toEqual(alice.peerId);
    expect(atBob.subarray(TRANSPORT_HEADER_SIZE)).toEqual(payload);
    bob.sendTransport(alice.peerId, Buffer.from('reply'));
    const atAlice = await alice.next();
    expect(atAlice.subarray(HEADER_SIZE, TRANSPORT_HEADER_SIZE)).toEqual(bob.peerId);
    expect(atAlice.subarray(TRANSPORT_HEADER_SIZE).toString()).toBe('reply');
    alice.close();
    bob.close();
  });

  it('drops a message to an unknown peer silently and keeps the session', async () => {
    const alice = await connect(uniqueName('alice'));
    const bob = await connect(uniqueName('bob'));
    alice.sendTransport(peerIdFromIdentifier(uniqueName('nobody')), Buffer.from('lost'));
    alice.sendTransport(bob.peerId, Buffer.from('found'));
    expect((await bob.next()).subarray(TRANSPORT_HEADER_SIZE).toString()).toBe('found');
    expect(alice.isClosed).toBe(false);
    alice.close();
    bob.close();
  });

  it("routes by each message's own destination when a sender alternates between peers", async () => {
    const sender = await connect(uniqueName('sender'));
    const first = await connect(uniqueName('first'));
    const second = await connect(uniqueName('second'));
    for (let i = 0; i < 6; i++)
      sender.sendTransport(i % 2 === 0 ? first.peerId : second.peerId, Buffer.from(`m${i}`));
    const atFirst = [await first.next(), await first.next(), await first.next()].map((m) =>
      m.subarray(TRANSPORT_HEADER_SIZE).toString(),
    );
    const atSecond = [await second.next(), await second.next(), await second.next()].map((m) =>
      m.subarray(TRANSPORT_HEADER_SIZE).toString(),
    );
    expect(atFirst).toEqual(['m0', 'm2', 'm4']);
    expect(atSecond).toEqual(['m1', 'm3', 'm5']);
    for (const c of [sender, first, second]) c.close();
  });
});

describe('peer state', () => {
  it('answers subscribe at once for online peers, and reports offline when the session ends', async () => {
    const alice = await connect(uniqueName('alice'));
    const bob = await connect(uniqueName('bob'));
    const absent = peerIdFromIdentifier(uniqueName('absent'));
    bob.subscribe([alice.peerId, absent]);
    const online = describeMessage(await bob.next());
    expect(online).toEqual({ type: MessageType.PeersOnline, peers: [alice.peerKey] });
    alice.close();
    const offline = describeMessage(await bob.next());
    expect(offline).toEqual({ type: MessageType.PeersWentOffline, peers: [alice.peerKey] });
    bob.close();
  });

  it('tells a subscriber once when a peer comes online (one-shot), and offline every time', async () => {
    const bob = await connect(uniqueName('bob'));
    const carolName = uniqueName('carol');
    const carolId = peerIdFromIdentifier(carolName);
    bob.subscribe([carolId]);
    const carol1 = await connect(carolName);
    expect(describeMessage(await bob.next())).toEqual({
      type: MessageType.PeersOnline,
      peers: [carol1.peerKey],
    });
    carol1.close();
    expect(describeMessage(await bob.next()).type).toBe(MessageType.PeersWentOffline);
    // Online interest was used up: the next arrival is not announced, but its departure is.
    const carol2 = await connect(carolName);
    carol2.close();
    expect(describeMessage(await bob.next()).type).toBe(MessageType.PeersWentOffline);
    bob.close();
  });

  it('stops reporting after unsubscribe', async () => {
    const bob = await connect(uniqueName('bob'));
    const dave = await connect(uniqueName('dave'));
    const erin = await connect(uniqueName('erin'));
    bob.subscribe([dave.peerId, erin.peerId]);
    expect(describeMessage(await bob.next()).peers.sort()).toEqual([dave.peerKey, erin.peerKey].sort());
    bob.unsubscribe([dave.peerId]);
    dave.close();
    erin.close();
    expect(describeMessage(await bob.next())).toEqual({
      type: MessageType.PeersWentOffline,
      peers: [erin.peerKey],
    });
    bob.close();
  });
});

describe('reconnect of the same peer ID', () => {
  it('x1,000: bob hears offline before online every time, and data reaches the newest session', async () => {
    const bob = await connect(uniqueName('bob'));
    const aliceName = uniqueName('alice');
    let alice = await connect(aliceName);
    for (let round = 0; round < 1000; round++) {
      // Bob "opens a connection" to alice: subscribe and get her online.
      bob.subscribe([alice.peerId]);
      const online = describeMessage(await bob.next());
      expect(online, `round ${round}`).toEqual({ type: MessageType.PeersOnline, peers: [alice.peerKey] });
      // Alice reconnects with the same ID while her old session is still registered.
      const newAlice = await connect(aliceName);
      const notice = describeMessage(await bob.next());
      expect(notice, `round ${round}: offline must come first`).toEqual({
        type: MessageType.PeersWentOffline,
        peers: [alice.peerKey],
      });
      // Bob's online interest was armed by his subscribe, so the new session is announced — after.
      const announced = describeMessage(await bob.next());
      expect(announced, `round ${round}: then online`).toEqual({
        type: MessageType.PeersOnline,
        peers: [alice.peerKey],
      });
      const oldClosed = await alice.closed;
      expect(oldClosed.code).toBe(1000); // replaced: an orderly close, not a violation
      // Bob closes his stale conn, unsubscribes, and opens again next round.
      bob.unsubscribe([alice.peerId]);
      alice = newAlice;
      bob.sendTransport(alice.peerId, Buffer.from(`ping ${round}`));
      const atAlice = await alice.next();
      expect(atAlice.subarray(TRANSPORT_HEADER_SIZE).toString()).toBe(`ping ${round}`);
    }
    expect(bob.pending()).toBe(0);
    alice.close();
    bob.close();
  }, 120_000);
});
