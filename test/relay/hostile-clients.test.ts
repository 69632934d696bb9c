import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateToken } from '../../src/auth/hmac-token.js';
import { encodeAuth } from '../../src/protocol/codec.js';
import { TRANSPORT_HEADER_SIZE } from '../../src/protocol/constants.js';
import { peerIdFromIdentifier } from '../../src/protocol/peer-id.js';
import { TEST_SECRET } from '../support/in-process-relay.js';
import { processMemoryMiB } from './support/process-memory.js';
import { RawWebSocket } from './support/raw-ws.js';
import { RelayProcess } from '../support/relay-process.js';
import { RelayTestClient } from '../support/relay-test-client.js';
import { createSelfSignedCert } from '../support/self-signed-cert.js';

// Attacks anyone can run before authenticating (and a few an authenticated peer can), against a
// spawned relay; memory is the child's own, from /proc.

function status(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 5_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

async function tcp(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  return socket;
}

function closedWithin(socket: Socket | RawWebSocket, ms: number): Promise<number | 'open'> {
  const started = Date.now();
  // Not events.once: it rejects on 'error', and a reset (the server destroying a socket with
  // unread bytes) is as much a close as a FIN; 'close' follows 'error' either way.
  const gone =
    socket instanceof RawWebSocket
      ? socket.gone
      : new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return Promise.race([
    gone.then(() => Date.now() - started),
    new Promise<'open'>((r) => setTimeout(() => r('open'), ms)),
  ]);
}

describe('unauthenticated HTTP attacks', () => {
  let relay: RelayProcess;
  beforeAll(async () => {
    relay = await RelayProcess.start();
  });
  afterAll(() => relay.stop());

  it('pipelining 10,000 scrapes on 4 connections without reading leaves memory bounded', async () => {
    const pid = relay.child.pid!;
    const before = await processMemoryMiB(pid);
    const flood = Buffer.from('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(10_000));
    const sockets = await Promise.all([1, 2, 3, 4].map(() => tcp(relay.metricsPort)));
    for (const socket of sockets) {
      socket.pause(); // never read a response
      socket.write(flood);
    }
    await expect
      .poll(() => relay.metric('relay_http_connections_refused_total', { listener: 'metrics' }), {
        timeout: 10_000,
      })
      .toBeGreaterThanOrEqual(4);
    const after = await processMemoryMiB(pid);
    for (const socket of sockets) socket.destroy();
    console.log(`pipelined scrapes: RSS ${before.rss.toFixed(0)} -> peak ${after.peak.toFixed(0)} MiB`);
    expect(after.peak - before.peak).toBeLessThan(100);
    expect(await status(relay.healthPort, '/healthz')).toBe(200);
  });

  it('5,000 scrapes at concurrency 25 share renderings and keep memory bounded', async () => {
    const pid = relay.child.pid!;
    const before = await processMemoryMiB(pid);
    const bodies = new Set<string>();
    const started = Date.now();
    let left = 5_000;
    const deadline = started + 80_000; // bounded in time too, on a loaded machine
    await Promise.all(
      Array.from({ length: 25 }, async () => {
        while (left-- > 0 && Date.now() < deadline) {
          const res = await fetch(`http://127.0.0.1:${relay.metricsPort}/metrics`);
          expect(res.status).toBe(200);
          bodies.add(await res.text());
        }
      }),
    );
    const elapsedMs = Date.now() - started;
    const after = await processMemoryMiB(pid);
    console.log(
      `5,000 scrapes: ${elapsedMs} ms, ${bodies.size} renderings, peak RSS ${before.peak.toFixed(0)} -> ${after.peak.toFixed(0)} MiB`,
    );
    // At most one rendering per started second (plus the one in progress at the start).
    expect(left).toBeLessThan(0); // all 5,000 ran
    expect(bodies.size).toBeLessThanOrEqual(Math.ceil(elapsedMs / 1_000) + 1);
    expect(after.peak - before.peak).toBeLessThan(100);
  }, 90_000);

  it('/healthz answers every probe while 300 idle connections are held and reopened', async () => {
    let holding = true;
    const hold = async (): Promise<void> => {
      while (holding) {
        try {
          const socket = await tcp(relay.healthPort);
          await once(socket, 'close');
        } catch {
          // refused: try again
        }
      }
    };
    const holders = Array.from({ length: 300 }, () => hold());
    await expect.poll(() => relay.metric('process_open_fds'), { timeout: 5_000 }).toBeGreaterThan(300);
    const answers: number[] = [];
    for (let i = 0; i < 45; i++) answers.push(await status(relay.healthPort, '/healthz'));
    holding = false;
    await Promise.race([Promise.all(holders), new Promise((r) => setTimeout(r, 5_000))]);
    expect(answers.filter((s) => s === 200)).toHaveLength(45);
  }, 60_000);
});

describe('slow and misbehaving WebSocket clients', () => {
  let relay: RelayProcess;
  beforeAll(async () => {
    relay = await RelayProcess.start({ env: { NB_HANDSHAKE_TIMEOUT: '2s' } });
  });
  afterAll(() => relay.stop());

  it('a silent TCP connection and a byte-a-second upgrade are closed at the handshake deadline', async () => {
    const silent = await tcp(relay.port);
    const trickle = await tcp(relay.port);
    const request = 'GET /relay HTTP/1.1\r\nHost: 127.0.0.1\r\n';
    let sent = 0;
    const drip = setInterval(() => trickle.write(request.charAt(sent++ % request.length)), 1_000);
    const [silentMs, trickleMs] = await Promise.all([
      closedWithin(silent, 8_000),
      closedWithin(trickle, 8_000),
    ]);
    clearInterval(drip);
    silent.destroy();
    trickle.destroy();
    console.log(`handshake deadline 2 s: silent closed after ${silentMs} ms, trickle after ${trickleMs} ms`);
    for (const ms of [silentMs, trickleMs]) {
      expect(ms).not.toBe('open');
      expect(ms).toBeGreaterThanOrEqual(1_500);
      expect(ms).toBeLessThanOrEqual(3_000);
    }
  });

  async function authenticated(identifier: string): Promise<RawWebSocket> {
    const raw = await RawWebSocket.open(relay.port);
    raw.sendFrame(encodeAuth(peerIdFromIdentifier(identifier), generateToken(TEST_SECRET, 3600)));
    await raw.waitReceived(3); // the auth response
    return raw;
  }

  it('a peer that breaks the protocol and never answers the close frame loses its socket within ~1 s', async () => {
    const raw = await authenticated('violator');
    raw.sendFrame(Buffer.from('not binary'), { opcode: 1 });
    const ms = await closedWithin(raw, 8_000);
    raw.destroy();
    console.log(`unanswered close: socket destroyed after ${ms} ms`);
    expect(ms).not.toBe('open');
    expect(ms).toBeLessThanOrEqual(2_500);
  });

  it('frames ws refuses itself are counted under their own close reasons', async () => {
    const unmasked = await authenticated('unmasked');
    unmasked.sendFrame(Buffer.from([1, 0]), { mask: false });
    const compressed = await authenticated('compressed');
    compressed.sendFrame(Buffer.from([1, 0]), { rsv1: true });
    await Promise.all([unmasked.gone, compressed.gone]);
    await expect
      .poll(() => relay.metric('relay_session_closes_total', { reason: 'ws_unmasked_frame' }))
      .toBe(1);
    await expect
      .poll(() => relay.metric('relay_session_closes_total', { reason: 'ws_compressed_frame' }))
      .toBe(1);
  });
});

describe('slow clients of a TLS listener', () => {
  const cert = createSelfSignedCert();
  let relay: RelayProcess;
  beforeAll(async () => {
    relay = await RelayProcess.start({
      exposedAddress: 'rels://127.0.0.1:443',
      env: { NB_HANDSHAKE_TIMEOUT: '2s', NB_TLS_CERT_FILE: cert.certFile, NB_TLS_KEY_FILE: cert.keyFile },
    });
  });
  afterAll(async () => {
    await relay.stop();
    cert.remove();
  });

  it('the handshake deadline counts from accept: TLS handshake and upgrade together', async () => {
    const silent = await tcp(relay.port);
    const silentClosed = closedWithin(silent, 8_000);
    // Silent for most of the deadline, then a quick TLS handshake, then the upgrade a byte a second.
    const slow = await tcp(relay.port);
    const slowClosed = closedWithin(slow, 8_000);
    // The client's own slowness, what is under test: it stays silent 1.5 s of the 2 s deadline.
    await new Promise((r) => setTimeout(r, 1_500));
    const tls = connectTls({ socket: slow, rejectUnauthorized: false });
    tls.on('error', () => {});
    await once(tls, 'secureConnect');
    const request = 'GET /relay HTTP/1.1\r\nHost: 127.0.0.1\r\n';
    let sent = 0;
    const drip = setInterval(() => tls.write(request.charAt(sent++ % request.length)), 1_000);
    const [silentMs, slowMs] = await Promise.all([silentClosed, slowClosed]);
    clearInterval(drip);
    silent.destroy();
    tls.destroy();
    console.log(
      `TLS, handshake deadline 2 s: silent closed after ${silentMs} ms, slow TLS + trickle after ${slowMs} ms`,
    );
    for (const ms of [silentMs, slowMs]) {
      expect(ms).not.toBe('open');
      expect(ms).toBeGreaterThanOrEqual(1_500);
      expect(ms).toBeLessThanOrEqual(2_900);
    }
    expect(await relay.metric('relay_http_connections_refused_total', { reason: 'handshake_deadline' })).toBe(
      2,
    );
  });

  it('a peer that upgraded in time keeps its session past the deadline', async () => {
    const url = `rels://127.0.0.1:${relay.port}`;
    const a = await RelayTestClient.connect(url, { identifier: 'tls-deadline-a', secret: TEST_SECRET });
    const b = await RelayTestClient.connect(url, { identifier: 'tls-deadline-b', secret: TEST_SECRET });
    // A connection accepted after both sessions and closed by its deadline proves theirs passed too.
    const deadlinesBefore = await relay.metric('relay_http_connections_refused_total', {
      reason: 'handshake_deadline',
    });
    const late = await tcp(relay.port);
    expect(await closedWithin(late, 8_000)).not.toBe('open');
    late.destroy();
    expect(await relay.metric('relay_http_connections_refused_total', { reason: 'handshake_deadline' })).toBe(
      deadlinesBefore + 1,
    );
    a.sendTransport(b.peerId, Buffer.from('after the deadline'));
    expect((await b.next()).subarray(TRANSPORT_HEADER_SIZE).toString()).toBe('after the deadline');
    a.close();
    b.close();
  });
});
