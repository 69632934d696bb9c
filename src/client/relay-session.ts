import { WebSocket } from 'ws';
import { MAX_MESSAGE_SIZE } from '../protocol/constants.js';
import type { Clock, TimerHandle } from '../time/clock.js';
import type { RelayClientError } from './relay-client-error.js';
import { CLIENT_DEFAULTS, type RelayClientOptions } from './relay-client-options.js';
import type { SilenceWatchdog } from './silence-watchdog.js';

/** A server that never answers the closing handshake is dropped after this long. */
const CLOSE_HANDSHAKE_TIMEOUT_MS = 1_000;

/** Settles connect(): resolved with the instance URL by the auth response, rejected by any failure. */
export interface PendingHandshake {
  resolve(url: string): void;
  reject(error: RelayClientError): void;
  timer: TimerHandle | undefined;
}

/** One authenticated WebSocket and everything that lives exactly as long as it. */
export interface RelaySession {
  readonly ws: WebSocket;
  readonly watchdog: SilenceWatchdog;
  instanceUrl?: string;
  /** Set by the first error seen, reported when the socket closes. */
  failure?: RelayClientError;
  handshake?: PendingHandshake;
}

/** Opens the WebSocket to the relay with the client's limits; nothing is sent yet. */
export function dialRelay(wsUrl: string, options: RelayClientOptions): WebSocket {
  return new WebSocket(wsUrl, {
    perMessageDeflate: false,
    // Nothing larger is valid; ws refuses it before buffering it.
    maxPayload: MAX_MESSAGE_SIZE,
    handshakeTimeout: options.connectTimeoutMs ?? CLIENT_DEFAULTS.connectTimeoutMs,
    ...(options.tls ?? {}),
  });
}

/** Starts the closing handshake and resolves once the socket is closed, at most a second later. */
export async function closeSocket(ws: WebSocket, clock: Clock): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return;
  await new Promise<void>((resolve) => {
    const timer = clock.setTimeout(() => ws.terminate(), CLOSE_HANDSHAKE_TIMEOUT_MS);
    ws.once('close', () => {
      clock.clearTimeout(timer);
      resolve();
    });
    ws.close();
  });
}
