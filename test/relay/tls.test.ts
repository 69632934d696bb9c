import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayTestClient } from '../support/relay-test-client.js';
import { startInProcessRelay, TEST_SECRET, type InProcessRelay } from '../support/in-process-relay.js';
import { createSelfSignedCert, type SelfSignedCert } from '../support/self-signed-cert.js';
import { TRANSPORT_HEADER_SIZE } from '../../src/protocol/constants.js';

let cert: SelfSignedCert;
let relay: InProcessRelay;

beforeAll(async () => {
  cert = createSelfSignedCert();
  relay = await startInProcessRelay({
    NB_TLS_CERT_FILE: cert.certFile,
    NB_TLS_KEY_FILE: cert.keyFile,
    NB_EXPOSED_ADDRESS: 'rels://relay.test:443',
  });
});
afterAll(async () => {
  await relay.stop();
  cert.remove();
});

describe('TLS listener', () => {
  it('speaks wss with the configured certificate and relays', async () => {
    const url = relay.url.replace('rel://', 'rels://');
    const a = await RelayTestClient.connect(url, { identifier: 'tls-a', secret: TEST_SECRET });
    const b = await RelayTestClient.connect(url, { identifier: 'tls-b', secret: TEST_SECRET });
    expect(a.instanceUrl).toBe('rels://relay.test:443');
    a.sendTransport(b.peerId, Buffer.from('over tls'));
    expect((await b.next()).subarray(TRANSPORT_HEADER_SIZE).toString()).toBe('over tls');
    await expect(RelayTestClient.open(relay.url)).rejects.toThrow();
    a.close();
    b.close();
  });
});
