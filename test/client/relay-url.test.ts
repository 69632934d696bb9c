import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayClient } from '../../src/client/relay-client.js';
import { relayWebSocketUrl } from '../../src/client/relay-url.js';
import { startInProcessRelay, TEST_SECRET, type InProcessRelay } from '../support/in-process-relay.js';

// NetBird v0.77.1's client (shared/relay/client/dialer/ws, prepareURL): scheme
// rel → ws, rels → wss, a host is required, the path becomes /relay whatever
// it was, the query stays.
describe('relay address → WebSocket URL, as NetBird dials it', () => {
  it.each([
    ['rel://relay.example:80', 'ws://relay.example:80/relay'],
    ['rels://relay.example', 'wss://relay.example/relay'],
    ['rels://relay.example:443/', 'wss://relay.example:443/relay'],
    ['rel://relay.example:80/custom/path', 'ws://relay.example:80/relay'],
    ['rels://relay.example:8443/relay', 'wss://relay.example:8443/relay'],
    ['rels://relay.example:8443/a/b?region=eu&x=1', 'wss://relay.example:8443/relay?region=eu&x=1'],
    ['rel://[::1]:3478/p', 'ws://[::1]:3478/relay'],
  ])('%s → %s', (address, expected) => {
    expect(relayWebSocketUrl(address)).toBe(expected);
  });

  it.each([
    ['http://relay.example:80', 'another scheme'],
    ['relay.example:443', 'no scheme (a bare host:port is a server-side form only)'],
    ['rel:///path', 'no host'],
    ['not a url', 'not a URL'],
  ])('refuses %s (%s) with invalid_url', (address) => {
    expect(() => relayWebSocketUrl(address)).toThrow(expect.objectContaining({ code: 'invalid_url' }));
  });
});

describe('a relay whose exposed address has a path', () => {
  let relay: InProcessRelay;
  const clients: RelayClient[] = [];
  beforeAll(async () => {
    relay = await startInProcessRelay({ NB_EXPOSED_ADDRESS: 'rel://relay.test:443/eu/relay-1?pool=a' });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await relay.stop();
  });

  it('is reached through a URL with that path, and hands the address back as given', async () => {
    const client = new RelayClient({
      url: `${relay.url}/eu/relay-1?pool=a`,
      peer: 'path-peer',
      auth: { secret: TEST_SECRET },
    });
    clients.push(client);
    await client.connect();
    expect(client.instanceUrl).toBe('rel://relay.test:443/eu/relay-1?pool=a');
  });
});
