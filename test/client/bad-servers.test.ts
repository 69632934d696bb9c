import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RelayClient } from '../../src/client/relay-client.js';
import type { RelayClientOptions } from '../../src/client/relay-client-options.js';
import { RelayClientError, type RelayClientErrorCode } from '../../src/client/relay-client-error.js';
import { RelayManager } from '../../src/client/relay-manager.js';
import { encodeAuthResponse, HEALTH_CHECK_MESSAGE } from '../../src/protocol/codec.js';
import { MessageType } from '../../src/protocol/constants.js';
import { freePort } from '../support/free-port.js';
import { acceptAuth, FakeRelayServer, type FakeRelayBehaviour } from './support/fake-relay-server.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function fakeServer(behaviour: FakeRelayBehaviour): Promise<FakeRelayServer> {
  const server = await FakeRelayServer.start(behaviour);
  cleanups.push(() => server.stop());
  return server;
}

function client(url: string, extra: Partial<RelayClientOptions> = {}): RelayClient {
  const relayClient = new RelayClient({
    url,
    peer: 'bad-server-test',
    auth: { secret: 'irrelevant' },
    ...extra,
  });
  cleanups.push(() => relayClient.close());
  return relayClient;
}

async function connectError(url: string, extra: Partial<RelayClientOptions> = {}): Promise<RelayClientError> {
  const error = await client(url, extra)
    .connect()
    .then(
      () => undefined,
      (err: unknown) => err,
    );
  expect(error).toBeInstanceOf(RelayClientError);
  return error as RelayClientError;
}

/** Connects, lets `after` misbehave, and returns the error the client disconnected with. */
async function disconnectError(
  after: (socket: Parameters<FakeRelayBehaviour>[0]) => void,
  extra: Partial<RelayClientOptions> = {},
): Promise<RelayClientError | undefined> {
  const server = await fakeServer((socket, first) => {
    acceptAuth()(socket, first);
    after(socket);
  });
  const relayClient = client(server.url, extra);
  const disconnected = once(relayClient, 'disconnected');
  await relayClient.connect();
  const [error] = (await disconnected) as [RelayClientError | undefined];
  expect(relayClient.state).toBe('disconnected');
  return error;
}

describe('handshake against misbehaving servers: a clear error, never a hang', () => {
  const cases: [string, FakeRelayBehaviour, RelayClientErrorCode][] = [
    ['garbage (bad version)', (s) => s.send(Buffer.from([9, 9, 9])), 'malformed_message'],
    ['an empty message', (s) => s.send(Buffer.alloc(0)), 'malformed_message'],
    ['a message larger than 8820 bytes', (s) => s.send(Buffer.alloc(9_000, 1)), 'oversize_message'],
    [
      'an auth response larger than 8192 bytes',
      (s) => s.send(Buffer.concat([Buffer.from([1, 7]), Buffer.alloc(8_500, 0x61)])),
      'oversize_message',
    ],
    [
      'a health check before the auth response',
      (s) => s.send(HEALTH_CHECK_MESSAGE),
      'unexpected_first_message',
    ],
    [
      'peers online before the auth response',
      (s) => s.send(Buffer.from([1, MessageType.PeersOnline])),
      'unexpected_first_message',
    ],
    ['an auth response without a URL', (s) => s.send(Buffer.from([1, 7])), 'malformed_message'],
    ['a text message', (s) => s.send('hello'), 'malformed_message'],
    ['a close without an answer (bad token)', (s) => s.close(), 'auth_rejected'],
    ['a dropped socket', (s) => s.terminate(), 'auth_rejected'],
  ];

  it.each(cases)('rejects %s', async (_what, behaviour, code) => {
    const server = await fakeServer(behaviour);
    const error = await connectError(server.url);
    expect(error.code).toBe(code);
  });

  it('gives up on a server that never answers auth (auth timeout)', async () => {
    const server = await fakeServer(() => {});
    const started = Date.now();
    const error = await connectError(server.url, { authTimeoutMs: 300 });
    expect(error.code).toBe('auth_timeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('reports a refused connection and a non-WebSocket answer as connect_failed', async () => {
    expect((await connectError(`rel://127.0.0.1:${await freePort()}`)).code).toBe('connect_failed');
    const http = createServer((_req, res) => res.writeHead(404).end());
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => http.close(() => resolve())));
    const error = await connectError(`rel://127.0.0.1:${(http.address() as AddressInfo).port}`);
    expect(error.code).toBe('connect_failed');
    expect(error.message).toContain('404');
  });

  it('rejects URLs that are not rel:// or rels://', () => {
    expect(() => client('http://127.0.0.1:1')).toThrow(RelayClientError);
  });
});

describe('sessions against misbehaving servers', () => {
  it('answers health checks and stays connected while they keep coming', async () => {
    const server = await fakeServer(acceptAuth());
    const relayClient = client(server.url, { healthCheckTimeoutMs: 400 });
    await relayClient.connect();
    const [socket] = server.sockets;
    for (let i = 0; i < 4; i++) {
      const answered = once(socket!, 'message');
      socket!.send(HEALTH_CHECK_MESSAGE);
      expect(Buffer.from((await answered)[0] as Buffer)).toEqual(HEALTH_CHECK_MESSAGE);
    }
    expect(relayClient.ready).toBe(true);
  });

  it('drops a server that sends no health check for the timeout', async () => {
    const started = Date.now();
    const error = await disconnectError(() => {}, { healthCheckTimeoutMs: 300 });
    expect(error?.code).toBe('health_check_timeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  const cases: [string, (socket: Parameters<FakeRelayBehaviour>[0]) => void, RelayClientErrorCode][] = [
    ['garbage', (s) => s.send(Buffer.from([1, 99])), 'malformed_message'],
    ['an oversize message', (s) => s.send(Buffer.alloc(8_821, 1)), 'oversize_message'],
    ['a second auth response', (s) => s.send(encodeAuthResponse('rel://again:1')), 'malformed_message'],
    [
      'a bad peer list',
      (s) => s.send(Buffer.from([1, MessageType.PeersWentOffline, 1, 2, 3])),
      'malformed_message',
    ],
    [
      'a truncated transport message',
      (s) => s.send(Buffer.from([1, MessageType.Transport, 1])),
      'malformed_message',
    ],
    ['a close message', (s) => s.send(Buffer.from([1, MessageType.Close])), 'closed_by_server'],
    ['a dropped socket', (s) => setImmediate(() => s.terminate()), 'connection_lost'],
  ];

  it.each(cases)('ends the session with a clear error on %s', async (_what, misbehave, code) => {
    const error = await disconnectError(misbehave);
    expect(error?.code).toBe(code);
  });

  it('closes pending opens and open connections when the session ends', async () => {
    const server = await fakeServer((socket, first) => {
      acceptAuth()(socket, first);
    });
    const relayClient = client(server.url);
    await relayClient.connect();
    const opening = relayClient.openConn('someone', { timeoutMs: 10_000 });
    server.dropClients();
    await expect(opening).rejects.toMatchObject({ code: 'not_connected' });
    await expect(relayClient.openConn('someone')).rejects.toMatchObject({ code: 'not_connected' });
  });

  it('a manager over a server that keeps sending garbage keeps reconnecting, then recovers', async () => {
    let healthy = false;
    const server = await fakeServer((socket, first) => {
      acceptAuth()(socket, first);
      if (!healthy) socket.send(Buffer.from([7, 7]));
    });
    const manager = new RelayManager({
      homeUrl: server.url,
      peer: 'manager-bad-server',
      auth: { secret: 'irrelevant' },
      backoff: { quickRetryMs: 20, initialMs: 20, maxMs: 40 },
    });
    cleanups.push(() => manager.stop());
    const disconnects: string[] = [];
    manager.on('homeDisconnected', (error) => disconnects.push(error?.code ?? 'none'));
    await manager.start();
    while (disconnects.length < 3) await once(manager, 'homeDisconnected');
    expect(new Set(disconnects)).toEqual(new Set(['malformed_message']));
    healthy = true;
    await once(manager, 'homeReconnected');
    expect(manager.ready).toBe(true);
  });
});
