import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayTestClient } from '../support/relay-test-client.js';
import { startInProcessRelay, TEST_SECRET, type InProcessRelay } from '../support/in-process-relay.js';

let dir: string;
let relay: InProcessRelay;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nbr-tls-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  relay = await startInProcessRelay({
    NB_TLS_CERT_FILE: join(dir, 'cert.pem'),
    NB_TLS_KEY_FILE: join(dir, 'key.pem'),
    NB_EXPOSED_ADDRESS: 'rels://relay.test:443',
  });
});
afterAll(async () => {
  await relay.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('TLS listener', () => {
  it('speaks wss with the configured certificate and relays', async () => {
    const url = relay.url.replace('rel://', 'rels://');
    const a = await RelayTestClient.connect(url, { identifier: 'tls-a', secret: TEST_SECRET });
    const b = await RelayTestClient.connect(url, { identifier: 'tls-b', secret: TEST_SECRET });
    expect(a.instanceUrl).toBe('rels://relay.test:443');
    a.sendTransport(b.peerId, Buffer.from('over tls'));
    expect((await b.next()).subarray(38).toString()).toBe('over tls');
    await expect(RelayTestClient.open(relay.url)).rejects.toThrow();
    a.close();
    b.close();
  });
});
