import { afterEach, describe, expect, it } from 'vitest';
import { RelayClient } from '../../src/client/relay-client.js';
import { CLOSE_MESSAGE, HEALTH_CHECK_MESSAGE } from '../../src/protocol/codec.js';
import { MessageType } from '../../src/protocol/constants.js';
import { peerIdFromIdentifier } from '../../src/protocol/peer-id.js';
import { authOnly, FakeRelayServer } from './support/fake-relay-server.js';

/** What the client puts on the wire, seen by a scripted server. */

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const peerState = (type: number, identifier: string): Buffer =>
  Buffer.concat([Buffer.from([1, type]), peerIdFromIdentifier(identifier)]);

async function setup(): Promise<{
  server: FakeRelayServer;
  client: RelayClient;
  socket: import('ws').WebSocket;
}> {
  const server = await FakeRelayServer.start(authOnly());
  cleanups.push(() => server.stop());
  const client = await RelayClient.connect({ url: server.url, peer: 'wire-client', auth: { secret: 's' } });
  cleanups.push(() => client.close());
  const [socket] = server.sockets;
  return { server, client, socket: socket! };
}

describe('client messages on the wire', () => {
  it('subscribes on open, and unsubscribes when told the peer went offline', async () => {
    const { server, client, socket } = await setup();
    const opening = client.openConn('wire-peer');
    expect((await server.waitForReceived(1))[0]).toEqual(
      peerState(MessageType.SubscribePeerState, 'wire-peer'),
    );
    socket.send(peerState(MessageType.PeersOnline, 'wire-peer'));
    const connection = await opening;
    socket.send(peerState(MessageType.PeersWentOffline, 'wire-peer'));
    expect(await connection.whenClosed()).toBe('peer_offline');
    expect((await server.waitForReceived(2))[1]).toEqual(
      peerState(MessageType.UnsubscribePeerState, 'wire-peer'),
    );
    await expect(client.openConn('wire-peer', { timeoutMs: 50 })).rejects.toMatchObject({
      code: 'open_timeout',
    });
  });

  it('unsubscribes when the owner closes and when an open times out', async () => {
    const { server, client, socket } = await setup();
    const opening = client.openConn('closed-by-owner');
    await server.waitForReceived(1);
    socket.send(peerState(MessageType.PeersOnline, 'closed-by-owner'));
    (await opening).close();
    expect((await server.waitForReceived(2))[1]).toEqual(
      peerState(MessageType.UnsubscribePeerState, 'closed-by-owner'),
    );
    await expect(client.openConn('never-online', { timeoutMs: 50 })).rejects.toMatchObject({
      code: 'open_timeout',
    });
    expect((await server.waitForReceived(4)).slice(2)).toEqual([
      peerState(MessageType.SubscribePeerState, 'never-online'),
      peerState(MessageType.UnsubscribePeerState, 'never-online'),
    ]);
  });

  it('ignores online and offline notices for peers it holds no connection to', async () => {
    const { server, client, socket } = await setup();
    socket.send(peerState(MessageType.PeersOnline, 'stranger'));
    socket.send(peerState(MessageType.PeersWentOffline, 'stranger'));
    socket.send(HEALTH_CHECK_MESSAGE);
    // The health check answer proves the notices before it were handled; nothing was sent for them.
    expect(await server.waitForReceived(1)).toEqual([HEALTH_CHECK_MESSAGE]);
    expect(client.ready).toBe(true);
  });

  it('sends close before leaving', async () => {
    const { server, client } = await setup();
    await client.close();
    expect(await server.waitForReceived(1)).toEqual([CLOSE_MESSAGE]);
  });
});
