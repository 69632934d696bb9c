import type { Duplex } from 'node:stream';

/** How long a refused client gets to read the answer before the socket is destroyed. */
const REFUSAL_LINGER_MS = 1_000;

/**
 * Answers an HTTP upgrade with a bodiless status and closes the socket. Node's HTTP server stops
 * watching a socket's errors once it is handed over for an upgrade, so a client that resets it
 * after the answer (a mesh dialer refused with 401 does) would crash the process with an
 * unhandled 'error' event; here errors of the refused socket are expected and dropped.
 */
export function refuseUpgrade(socket: Duplex, status: string): void {
  socket.on('error', () => {});
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
}
