import { once } from 'node:events';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePeerLists } from '../../src/protocol/codec.js';
import { MessageType } from '../../src/protocol/constants.js';
import { peerIdFromIdentifier, peerKeyFromBytes } from '../../src/protocol/peer-id.js';
import { TEST_SECRET } from '../support/in-process-relay.js';
import { RelayProcess } from '../support/relay-process.js';
import { RelayTestClient } from '../support/relay-test-client.js';
import { processMemoryMiB } from './support/process-memory.js';

/** The HTTP status of an upgrade attempt (101 when it became a WebSocket). */
function upgradeStatus(
  port: number,
  headers: Record<string, string> = {},
): Promise<{ status: number; ws?: WebSocket }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/relay`, { headers });
    ws.once('open', () => resolve({ status: 101, ws }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.once('error', () => resolve({ status: 0 }));
  });
}

describe('per-IP limits', () => {
  let dir: string;
  let limitsFile: string;
  let relay: RelayProcess;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nb-limits-'));
    limitsFile = join(dir, 'limits.env');
    writeFileSync(limitsFile, 'NB_MAX_CONNECTIONS_PER_IP=3\n');
    relay = await RelayProcess.start({
      env: {
        NB_LIMITS_FILE: limitsFile,
        NB_CONNECT_RATE: '1',
        NB_CONNECT_BURST: '40',
        NB_TRUSTED_PROXIES: '127.0.0.2',
      },
    });
  });
  afterAll(async () => {
    await relay.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('caps concurrent connections per client IP, counted, and SIGHUP re-reads the cap', async () => {
    const held = await Promise.all([1, 2, 3].map(() => upgradeStatus(relay.port)));
    expect(held.map((h) => h.status)).toEqual([101, 101, 101]);
    expect((await upgradeStatus(relay.port)).status).toBe(429);
    expect(await relay.metric('relay_abuse_refusals_total', { reason: 'ip_connections' })).toBe(1);

    writeFileSync(limitsFile, 'NB_MAX_CONNECTIONS_PER_IP=4\n');
    relay.child.kill('SIGHUP');
    await expect.poll(() => relay.output.includes('limits reloaded')).toBe(true);
    const fourth = await upgradeStatus(relay.port);
    expect(fourth.status).toBe(101);

    // A bad file: one error line, the old limits stay.
    writeFileSync(limitsFile, 'NB_MAX_CONNECTIONS_PER_IP=lots\n');
    relay.child.kill('SIGHUP');
    await expect.poll(() => relay.output.includes('limits not reloaded')).toBe(true);
    expect(relay.output).toContain('NB_MAX_CONNECTIONS_PER_IP');
    expect((await upgradeStatus(relay.port)).status).toBe(429);
    for (const h of [...held, fourth]) h.ws?.terminate();
  });

  it('takes the client IP from X-Real-Ip only from a trusted proxy', async () => {
    // 127.0.0.2 is the trusted proxy: each real client behind it has its own cap.
    const viaProxy = (ip: string) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${relay.port}/relay`, {
          headers: { 'X-Real-Ip': ip },
          localAddress: '127.0.0.2',
        });
        ws.once('open', () => {
          resolve(101);
          setTimeout(() => ws.terminate(), 2_000);
        });
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.once('error', () => resolve(0));
      });
    const statuses = await Promise.all(
      ['203.0.113.1', '203.0.113.2'].flatMap((ip) => [1, 2, 3, 4].map(() => viaProxy(ip))),
    );
    expect(statuses.filter((s) => s === 101)).toHaveLength(8);
  });

  it('rate-limits TCP connection attempts per IP', async () => {
    const before = await relay.metric('relay_abuse_refusals_total', { reason: 'connect_rate' });
    const sockets = await Promise.all(
      Array.from({ length: 80 }, async () => {
        const socket = connect(relay.port, '127.0.0.1');
        socket.on('error', () => {});
        await once(socket, 'connect');
        return socket;
      }),
    );
    await expect
      .poll(
        async () => (await relay.metric('relay_abuse_refusals_total', { reason: 'connect_rate' })) - before,
      )
      .toBeGreaterThanOrEqual(30);
    for (const s of sockets) s.destroy();
  });
});

describe('subscriptions', () => {
  let relay: RelayProcess;
  beforeAll(async () => {
    relay = await RelayProcess.start();
  });
  afterAll(() => relay.stop());

  it('20 sessions asking for 65,536 subscriptions each are closed at the cap; memory stays bounded', async () => {
    const pid = relay.child.pid!;
    const before = await processMemoryMiB(pid);
    const keys = Array.from({ length: 65_536 }, (_, i) => peerKeyFromBytes(peerIdFromIdentifier(`sub-${i}`)));
    const messages = encodePeerLists(MessageType.SubscribePeerState, keys);
    const clients = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        RelayTestClient.connect(relay.url, { identifier: `subscriber-${i}`, secret: TEST_SECRET }),
      ),
    );
    for (const client of clients) for (const message of messages) client.send(message);
    await Promise.all(clients.map((c) => c.closed));
    const after = await processMemoryMiB(pid);
    console.log(
      `20 x 65,536 subscriptions: peak RSS ${before.peak.toFixed(0)} -> ${after.peak.toFixed(0)} MiB`,
    );
    expect(await relay.metric('relay_session_closes_total', { reason: 'subscription_limit' })).toBe(20);
    expect(after.peak - before.peak).toBeLessThan(150);
  });
});
