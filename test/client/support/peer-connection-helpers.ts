import { once } from 'node:events';
import type { PeerConnection } from '../../../src/client/peer-connection.js';

/** The next payload `connection` receives, or a rejection after `timeoutMs`. */
export async function nextPayload(connection: PeerConnection, timeoutMs = 5_000): Promise<Buffer> {
  const [payload] = (await once(connection, 'data', { signal: AbortSignal.timeout(timeoutMs) })) as [Buffer];
  return payload;
}

/** Resolves with the close reason, or 'still_open' when nothing happened within `timeoutMs`. */
export async function closeReasonWithin(connection: PeerConnection, timeoutMs: number): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<string>(
    (resolve) => (timer = setTimeout(() => resolve('still_open'), timeoutMs)),
  );
  try {
    return await Promise.race([connection.whenClosed(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
