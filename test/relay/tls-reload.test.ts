import { X509Certificate } from 'node:crypto';
import { readFileSync, mkdirSync, mkdtempSync, copyFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_SECRET } from '../support/in-process-relay.js';
import { RelayProcess } from '../support/relay-process.js';
import { RelayTestClient } from '../support/relay-test-client.js';
import { createSelfSignedCert, type SelfSignedCert } from '../support/self-signed-cert.js';
import { TRANSPORT_HEADER_SIZE } from '../../src/protocol/constants.js';

/** The SHA-256 fingerprint of the certificate a new handshake gets. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

function fingerprintOf(cert: SelfSignedCert): string {
  return new X509Certificate(readFileSync(cert.certFile)).fingerprint256;
}

describe('TLS certificate reload', () => {
  const first = createSelfSignedCert();
  const second = createSelfSignedCert();
  let dir: string;
  let relay: RelayProcess;

  /** Lays a version directory and swaps the `current` symlink to it atomically, as kubelet does. */
  function publish(name: string, certFile: string, keyFile: string): void {
    mkdirSync(join(dir, name));
    copyFileSync(certFile, join(dir, name, 'tls.crt'));
    copyFileSync(keyFile, join(dir, name, 'tls.key'));
    symlinkSync(name, join(dir, 'next'));
    renameSync(join(dir, 'next'), join(dir, 'current'));
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nb-tls-reload-'));
    publish('v1', first.certFile, first.keyFile);
    relay = await RelayProcess.start({
      exposedAddress: 'rels://relay.test:443',
      env: {
        NB_TLS_CERT_FILE: join(dir, 'current', 'tls.crt'),
        NB_TLS_KEY_FILE: join(dir, 'current', 'tls.key'),
        NB_TLS_RELOAD_INTERVAL: '200ms',
      },
    });
  });
  afterAll(async () => {
    await relay.stop();
    rmSync(dir, { recursive: true, force: true });
    first.remove();
    second.remove();
  });

  it('serves a swapped certificate to new handshakes, keeps sessions, and refuses a bad pair once', async () => {
    const url = `rels://127.0.0.1:${relay.port}`;
    expect(await servedFingerprint(relay.port)).toBe(fingerprintOf(first));
    const a = await RelayTestClient.connect(url, { identifier: 'tls-reload-a', secret: TEST_SECRET });
    const b = await RelayTestClient.connect(url, { identifier: 'tls-reload-b', secret: TEST_SECRET });

    publish('v2', second.certFile, second.keyFile);
    const secondPrint = fingerprintOf(second);
    await expect.poll(() => servedFingerprint(relay.port), { timeout: 5_000 }).toBe(secondPrint);
    a.sendTransport(b.peerId, Buffer.from('still here'));
    expect((await b.next()).subarray(TRANSPORT_HEADER_SIZE).toString()).toBe('still here');

    // The new certificate with the old key does not load.
    publish('v3', second.certFile, first.keyFile);
    await expect
      .poll(() => relay.output.includes('new TLS certificate refused'), { timeout: 5_000 })
      .toBe(true);
    expect(await relay.metric('relay_tls_reload_checks_total', { result: 'refused' })).toBe(1);
    // Five more polls see the same bad pair: counted as unchanged, neither retried nor logged again.
    const unchangedBefore = await relay.metric('relay_tls_reload_checks_total', { result: 'unchanged' });
    await expect
      .poll(() => relay.metric('relay_tls_reload_checks_total', { result: 'unchanged' }), { timeout: 5_000 })
      .toBeGreaterThanOrEqual(unchangedBefore + 5);
    expect(await relay.metric('relay_tls_reload_checks_total', { result: 'refused' })).toBe(1);
    expect(relay.output.split('new TLS certificate refused')).toHaveLength(2);
    expect(await servedFingerprint(relay.port)).toBe(secondPrint);
    a.close();
    b.close();
  });
});
