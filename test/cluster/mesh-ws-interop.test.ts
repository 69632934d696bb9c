import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { ClusterMetrics } from '../../src/cluster/cluster-metrics.js';
import {
  MESH_HEADER,
  MESH_PATH,
  ReplayGuard,
  acceptProof,
  dialHeaders,
  isValidAcceptProof,
  verifyDial,
} from '../../src/cluster/mesh-auth.js';
import { readMeshFrame, transportRecordSize, writeTransportRecord } from '../../src/cluster/mesh-frame.js';
import { MeshNetwork } from '../../src/cluster/mesh-network.js';
import { MeshServer } from '../../src/cluster/mesh-server.js';
import { TRANSPORT_HEADER_SIZE } from '../../src/protocol/constants.js';
import { peerKeyToBytes, type PeerKey } from '../../src/protocol/peer-id.js';
import { eventually, metricValue, peer, silentLogger } from './cluster-test-kit.js';

/**
 * The mesh frames its WebSocket itself; a pod of the previous release uses the
 * ws library on the same link. These tests put ws, configured as that release
 * configured it, on the other end, both ways.
 */
const SECRET = 'interop-secret';
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface OursNode {
  mesh: MeshNetwork;
  port: number;
  metrics: Registry;
  received: { peer: PeerKey; payload: string }[];
  local: Set<PeerKey>;
}

async function ours(id: string): Promise<OursNode> {
  const metrics = new Registry();
  const clusterMetrics = new ClusterMetrics(metrics);
  const received: OursNode['received'] = [];
  const local = new Set<PeerKey>();
  const mesh = new MeshNetwork({
    localInstance: id,
    secret: SECRET,
    deliverLocal: (p, message) => {
      if (!local.has(p)) return false;
      received.push({ peer: p, payload: message.subarray(TRANSPORT_HEADER_SIZE).toString() });
      return true;
    },
    onNotHere: () => {},
    onShedRequest: () => {},
    metrics: clusterMetrics,
    logger: silentLogger,
    limits: { backoffBaseMs: 20, backoffMaxMs: 200, keepaliveIntervalMs: 200 },
  });
  const server = new MeshServer({
    listen: { host: '127.0.0.1', port: 0 },
    secret: SECRET,
    instanceId: id,
    maxPayload: 256 * 1024,
    metrics: clusterMetrics,
    logger: silentLogger,
    accept: (socket, from) => mesh.accept(socket, from),
  });
  const port = await server.start();
  cleanups.push(async () => {
    mesh.close();
    await server.close();
  });
  return { mesh, port, metrics, received, local };
}

function transport(sender: PeerKey, payload: string): Buffer {
  return Buffer.concat([Buffer.from([1, 3]), peerKeyToBytes(sender), Buffer.from(payload)]);
}

function meshFrame(destination: PeerKey, message: Buffer): Buffer {
  const frame = Buffer.alloc(transportRecordSize(message));
  writeTransportRecord(frame, 0, peerKeyToBytes(destination), message);
  return frame;
}

/** The payloads of the transport records in one frame a ws end received. */
function payloadsOf(frame: Buffer): string[] {
  const seen: string[] = [];
  const problem = readMeshFrame(frame, {
    transport: (_peer, message) => seen.push(message.subarray(TRANSPORT_HEADER_SIZE).toString()),
    notHere: () => {},
    shed: () => {},
  });
  expect(problem).toBeUndefined();
  return seen;
}

/** A dial as the previous release made it: ws, unmasked by a zero key, proof checked on upgrade. */
function oldDial(port: number, from: string, to: string): Promise<WebSocket> {
  const { headers, request } = dialHeaders(SECRET, from, to);
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}${MESH_PATH}`, {
      headers,
      perMessageDeflate: false,
      generateMask: (mask) => mask.fill(0),
    });
    socket.once('upgrade', (response) => {
      const proof = response.headers[MESH_HEADER.proof];
      if (!isValidAcceptProof(SECRET, request, typeof proof === 'string' ? proof : undefined))
        reject(new Error('bad accept proof'));
    });
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
    cleanups.push(() => socket.terminate());
  });
}

/** A listener as the previous release ran it: ws's WebSocketServer behind the same authentication. */
async function oldListener(id: string): Promise<{ port: number; links: WebSocket[]; server: Server }> {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const proofs = new WeakMap<object, string>();
  const replay = new ReplayGuard();
  wss.on('headers', (headers, request) => headers.push(`${MESH_HEADER.proof}: ${proofs.get(request)}`));
  const links: WebSocket[] = [];
  const server = createServer();
  server.on('upgrade', (request, socket, head) => {
    const verdict = verifyDial(SECRET, id, request.headers, replay);
    if (!verdict.ok) return socket.destroy();
    proofs.set(request, acceptProof(SECRET, verdict.request));
    wss.handleUpgrade(request, socket, head, (ws) => links.push(ws));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const ws of wss.clients) ws.terminate();
    await new Promise((resolve) => server.close(resolve));
  });
  return { port: (server.address() as AddressInfo).port, links, server };
}

const nextMessage = (socket: WebSocket): Promise<Buffer> =>
  new Promise((resolve) => socket.once('message', (data: Buffer) => resolve(data)));

describe('mesh interop with a ws pod of the previous release', () => {
  it('accepts a ws dialer: frames both ways, ping answered, close handshake ends the link', async () => {
    const b = await ours('b-new');
    const onB = peer('on-b');
    const onOld = peer('on-old');
    b.local.add(onB);
    const old = await oldDial(b.port, 'a-old', 'b-new');
    await eventually(() => b.mesh.link('a-old')?.isUp);
    old.send(meshFrame(onB, transport(onOld, 'from ws')));
    // A 200 KB frame (more than one socket read) of 2,000-byte messages.
    const big = Array.from({ length: 100 }, (_, i) =>
      meshFrame(onB, transport(onOld, `${i}`.padEnd(2_000, '.'))),
    );
    old.send(Buffer.concat(big));
    await eventually(() => b.received.length === 101);
    expect(b.received[0]).toEqual({ peer: onB, payload: 'from ws' });
    expect(b.received[100]?.payload).toBe('99'.padEnd(2_000, '.'));
    const answer = nextMessage(old);
    expect(b.mesh.forward('a-old', onOld, transport(onB, 'from ours'))).toBe(true);
    expect(payloadsOf(await answer)).toEqual(['from ours']);
    const pong = new Promise<string>((resolve) => old.once('pong', (data) => resolve(data.toString())));
    old.ping('are you there');
    expect(await pong).toBe('are you there');
    // Our keepalive pings reach ws, which answers them: the link stays up past two intervals.
    for (let i = 0; i < 2; i++) await new Promise((resolve) => old.once('ping', resolve));
    expect(b.mesh.link('a-old')?.isUp).toBe(true);
    const closed = new Promise<number>((resolve) => old.once('close', (code) => resolve(code)));
    old.close(1000, 'bye');
    expect(await closed).toBe(1000);
    await eventually(() => b.mesh.link('a-old')?.isUp === false);
    expect(await metricValue(b.metrics, 'relay_mesh_protocol_errors_total')).toBe(0);
  });

  it('dials a ws listener: frames both ways (masked with a zero key, as ws requires of a client)', async () => {
    const old = await oldListener('b-old');
    const a = await ours('a-new');
    const onA = peer('on-a');
    const onOld = peer('on-old');
    a.local.add(onA);
    a.mesh.updateMembers(
      new Map([
        ['a-new', { instance: 'a-new', meshAddress: `127.0.0.1:${a.port}`, podName: 'pod-a' }],
        ['b-old', { instance: 'b-old', meshAddress: `127.0.0.1:${old.port}`, podName: 'pod-b' }],
      ]),
    );
    await eventually(() => old.links.length === 1 && a.mesh.link('b-old')?.isUp);
    const link = old.links[0] as WebSocket;
    const first = nextMessage(link);
    for (let i = 0; i < 3; i++) a.mesh.forward('b-old', onOld, transport(onA, `m${i}`));
    const got = payloadsOf(await first);
    while (got.length < 3) got.push(...payloadsOf(await nextMessage(link)));
    expect(got).toEqual(['m0', 'm1', 'm2']);
    link.send(meshFrame(onA, transport(onOld, 'back from ws')));
    await eventually(() => a.received.length === 1);
    expect(a.received[0]).toEqual({ peer: onA, payload: 'back from ws' });
    const pong = new Promise<string>((resolve) => link.once('pong', (data) => resolve(data.toString())));
    link.ping('ping from ws');
    expect(await pong).toBe('ping from ws');
    // A text frame from the ws side is a protocol error: closed with 1008, counted, nothing delivered.
    const closed = new Promise<number>((resolve) => link.once('close', (code) => resolve(code)));
    link.send('text');
    link.send(meshFrame(onA, transport(onOld, 'after the text frame')));
    expect(await closed).toBe(1008);
    expect(await metricValue(a.metrics, 'relay_mesh_protocol_errors_total', { reason: 'text_frame' })).toBe(
      1,
    );
    expect(a.received).toHaveLength(1);
  });
});
