import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { MeshSocket } from './mesh-socket.js';

/** RFC 6455 4.2.2: the accept key is SHA-1 of the client's key and this GUID. */
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** A Sec-WebSocket-Key is 16 random bytes in base64 (RFC 6455 4.1). */
const WS_KEY_SHAPE = /^[+/0-9A-Za-z]{22}==$/;

export function wsAcceptKey(key: string): string {
  return createHash('sha1')
    .update(key + WS_GUID)
    .digest('base64');
}

/** The WebSocket key of an upgrade request, if it is a well-formed version-13 WebSocket upgrade. */
export function wsUpgradeKey(headers: IncomingHttpHeaders): string | undefined {
  const key = headers['sec-websocket-key'];
  if (headers.upgrade?.toLowerCase() !== 'websocket') return undefined;
  if (headers['sec-websocket-version'] !== '13') return undefined;
  return typeof key === 'string' && WS_KEY_SHAPE.test(key) ? key : undefined;
}

/** Completes an accepted upgrade (101 with our extra headers) and takes the socket over. */
export function acceptUpgrade(
  socket: Duplex,
  head: Buffer,
  key: string,
  extraHeaders: Record<string, string>,
  maxPayload: number,
): MeshSocket {
  const lines = [
    'HTTP/1.1 101 Switching Protocols',
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Accept: ${wsAcceptKey(key)}`,
    ...Object.entries(extraHeaders).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  return new MeshSocket(socket as Socket, head, 'server', maxPayload);
}

export interface MeshDial {
  /** Gives up the dial (its callback is not called). */
  abort(): void;
}

export type MeshDialOutcome =
  { socket: MeshSocket; response: IncomingMessage } | { error: Error; response?: IncomingMessage };

/**
 * Dials a mesh listener and performs the WebSocket upgrade with `headers`.
 * `done` gets the framed socket (not started yet: the caller checks the
 * response first) or why it failed, once.
 */
export function dialUpgrade(
  address: string,
  path: string,
  headers: Record<string, string>,
  options: { timeoutMs: number; maxPayload: number },
  done: (outcome: MeshDialOutcome) => void,
): MeshDial {
  const url = new URL(`ws://${address}${path}`);
  const key = randomBytes(16).toString('base64');
  let settled = false;
  const settle = (outcome: MeshDialOutcome): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    done(outcome);
  };
  const request = httpRequest({
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port,
    path,
    agent: false,
    headers: {
      ...headers,
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Key': key,
    },
  });
  const timer = setTimeout(() => {
    request.destroy();
    settle({ error: new Error('mesh upgrade timed out') });
  }, options.timeoutMs);
  timer.unref();
  request.on('error', (error) => settle({ error }));
  request.on('response', (response) => {
    request.destroy();
    settle({ error: new Error(`mesh upgrade refused: ${response.statusCode}`), response });
  });
  request.on('upgrade', (response: IncomingMessage, socket: Socket, head: Buffer) => {
    if (settled) {
      socket.destroy();
      return;
    }
    const accept = response.headers['sec-websocket-accept'];
    if (response.headers.upgrade?.toLowerCase() !== 'websocket' || accept !== wsAcceptKey(key)) {
      socket.destroy();
      settle({ error: new Error('mesh upgrade answered without a valid WebSocket accept'), response });
      return;
    }
    settle({ socket: new MeshSocket(socket, head, 'client', options.maxPayload), response });
  });
  request.end();
  return {
    abort: () => {
      settled = true;
      clearTimeout(timer);
      request.destroy();
    },
  };
}
