import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RelayClient } from '../../src/client/relay-client.js';
import { MAX_TRANSPORT_PAYLOAD, type RelayClientOptions } from '../../src/client/relay-client-options.js';
import { generateToken } from '../../src/auth/hmac-token.js';
import { startInProcessRelay, TEST_SECRET, type InProcessRelay } from '../support/in-process-relay.js';
import { createSelfSignedCert, type SelfSignedCert } from '../support/self-signed-cert.js';
import { nextPayload } from './support/peer-connection-helpers.js';

/** Client details against our standalone relay in this process. */

let relay: InProcessRelay;
const clients: RelayClient[] = [];

beforeAll(async () => {
  relay = await startInProcessRelay();
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
});
afterAll(async () => {
  await relay.stop();
});

async function connect(peer: string, extra: Partial<RelayClientOptions> = {}): Promise<RelayClient> {
  const client = new RelayClient({ url: relay.url, peer, auth: { secret: TEST_SECRET }, ...extra });
  clients.push(client);
  await client.connect();
  return client;
}

describe('authentication', () => {
  it('accepts a ready token, or a function minting one per connect', async () => {
    await expect(
      connect('token-bytes', { auth: { token: generateToken(TEST_SECRET, 60) } }),
    ).resolves.toBeDefined();
    let minted = 0;
    const client = await connect('token-fn', {
      auth: {
        token: () => {
          minted++;
          return generateToken(TEST_SECRET, 60);
        },
      },
    });
    client.terminate();
    await once(client, 'disconnected');
    await client.connect();
    expect(minted).toBe(2);
  });

  it.each([
    ['a wrong secret', { secret: 'not-the-secret' }],
    ['an expired token', { token: generateToken(TEST_SECRET, -10) }],
  ])('is rejected with auth_rejected for %s', async (_what, auth) => {
    await expect(connect('bad-auth', { auth })).rejects.toMatchObject({ code: 'auth_rejected' });
  });

  it('can connect again after a drop, and never after close()', async () => {
    const client = await connect('again');
    client.terminate();
    const [error] = (await once(client, 'disconnected')) as [{ code: string }];
    expect(error.code).toBe('connection_lost');
    await client.connect();
    expect(client.ready).toBe(true);
    await client.close();
    await expect(client.connect()).rejects.toMatchObject({ code: 'client_closed' });
  });
});

describe('opening connections', () => {
  it('times out when the peer never comes online, and a later open is not blocked', async () => {
    const a = await connect('timeout-a');
    await expect(a.openConn('timeout-nobody', { timeoutMs: 100 })).rejects.toMatchObject({
      code: 'open_timeout',
    });
    expect(a.connectionCount).toBe(0);
    const opening = a.openConn('timeout-nobody', { timeoutMs: 5_000 });
    await connect('timeout-nobody');
    await expect(opening).resolves.toBeDefined();
  });

  it('can be aborted', async () => {
    const a = await connect('abort-a');
    const controller = new AbortController();
    const opening = a.openConn('abort-nobody', { signal: controller.signal });
    controller.abort();
    await expect(opening).rejects.toMatchObject({ code: 'open_aborted' });
    expect(a.hasConnections()).toBe(false);
  });

  it('refuses a second open while the first is still waiting', async () => {
    const a = await connect('pending-a');
    const first = a.openConn('pending-nobody', { timeoutMs: 5_000 });
    await expect(a.openConn('pending-nobody')).rejects.toThrow('connection already exists');
    first.catch(() => {});
  });

  it('rejects opens when not connected', async () => {
    const client = new RelayClient({
      url: relay.url,
      peer: 'never-connected',
      auth: { secret: TEST_SECRET },
    });
    await expect(client.openConn('x')).rejects.toMatchObject({ code: 'not_connected' });
  });
});

describe('sending', () => {
  it(`carries payloads up to ${MAX_TRANSPORT_PAYLOAD} bytes and refuses larger ones`, async () => {
    const a = await connect('size-a');
    const b = await connect('size-b');
    const [ab, ba] = await Promise.all([a.openConn('size-b'), b.openConn('size-a')]);
    const largest = Buffer.alloc(MAX_TRANSPORT_PAYLOAD, 7);
    const got = nextPayload(ba);
    ab.send(largest);
    expect((await got).equals(largest)).toBe(true);
    expect(() => ab.send(Buffer.alloc(MAX_TRANSPORT_PAYLOAD + 1))).toThrow(
      expect.objectContaining({ code: 'payload_too_large' }),
    );
    ab.close();
    expect(() => ab.send(Buffer.from('late'))).toThrow(
      expect.objectContaining({ code: 'connection_closed' }),
    );
  });

  it('queues payloads that arrive before a consumer and hands them over in order', async () => {
    const a = await connect('queue-a');
    const b = await connect('queue-b');
    const [ab, ba] = await Promise.all([a.openConn('queue-b'), b.openConn('queue-a')]);
    const sent = ['1', '2', '3'];
    // The first payload goes to this one-shot listener; the rest wait in the queue until iterated.
    const first = nextPayload(ab);
    for (const text of sent) ba.send(Buffer.from(text));
    expect((await first).toString()).toBe('1');
    const rest: string[] = [];
    for await (const payload of ab) {
      rest.push(payload.toString());
      if (rest.length === 2) break;
    }
    expect(rest).toEqual(['2', '3']);
  });
});

describe('rels:// (TLS)', () => {
  let cert: SelfSignedCert;
  let tlsRelay: InProcessRelay;

  beforeAll(async () => {
    cert = createSelfSignedCert();
    tlsRelay = await startInProcessRelay({
      NB_TLS_CERT_FILE: cert.certFile,
      NB_TLS_KEY_FILE: cert.keyFile,
      NB_EXPOSED_ADDRESS: 'rels://relay.test:443',
    });
  });
  afterAll(async () => {
    await tlsRelay.stop();
    cert.remove();
  });

  it('connects with the CA given and refuses an unknown certificate', async () => {
    const url = tlsRelay.url.replace(/^rel:/, 'rels:');
    const client = new RelayClient({
      url,
      peer: 'tls-peer',
      auth: { secret: TEST_SECRET },
      tls: { ca: readFileSync(cert.certFile) },
    });
    clients.push(client);
    await client.connect();
    expect(client.instanceUrl).toBe('rels://relay.test:443');
    const untrusting = new RelayClient({ url, peer: 'tls-peer-2', auth: { secret: TEST_SECRET } });
    await expect(untrusting.connect()).rejects.toMatchObject({ code: 'connect_failed' });
  });
});
