import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * Authentication of mesh links. The dialer proves it knows the cluster secret
 * with an HMAC-SHA256 over a timestamp, a nonce and both instance ids; the
 * listener checks it in constant time, within a replay window, and answers
 * with its own proof so the dialer knows it reached the intended instance.
 */
export const MESH_PATH = '/mesh';
export const MESH_HEADER = {
  from: 'x-nbmesh-from',
  to: 'x-nbmesh-to',
  time: 'x-nbmesh-time',
  nonce: 'x-nbmesh-nonce',
  proof: 'x-nbmesh-proof',
} as const;

/** A dial older or newer than this (clock skew included) is refused. */
export const REPLAY_WINDOW_MS = 30_000;
const MAX_ID_LENGTH = 128;

export type MeshAuthFailure =
  'missing_header' | 'wrong_instance' | 'stale_timestamp' | 'replayed_nonce' | 'bad_proof';

export interface DialRequest {
  from: string;
  to: string;
  time: number;
  nonce: string;
}

function proof(secret: string, role: 'dial' | 'accept', request: DialRequest): Buffer {
  return createHmac('sha256', secret)
    .update(`nbmesh1|${role}|${request.from}|${request.to}|${request.time}|${request.nonce}`)
    .digest();
}

function sameProof(expected: Buffer, presented: string | undefined): boolean {
  if (presented === undefined || presented.length !== expected.length * 2) return false;
  const bytes = Buffer.from(presented, 'hex');
  return bytes.length === expected.length && timingSafeEqual(bytes, expected);
}

/** Headers the dialer sends with its WebSocket upgrade. */
export function dialHeaders(
  secret: string,
  from: string,
  to: string,
  now = Date.now(),
): {
  headers: Record<string, string>;
  request: DialRequest;
} {
  const request: DialRequest = { from, to, time: now, nonce: randomBytes(16).toString('hex') };
  return {
    request,
    headers: {
      [MESH_HEADER.from]: from,
      [MESH_HEADER.to]: to,
      [MESH_HEADER.time]: String(now),
      [MESH_HEADER.nonce]: request.nonce,
      [MESH_HEADER.proof]: proof(secret, 'dial', request).toString('hex'),
    },
  };
}

/** The listener's answer, checked by the dialer. */
export function acceptProof(secret: string, request: DialRequest): string {
  return proof(secret, 'accept', request).toString('hex');
}

export function isValidAcceptProof(
  secret: string,
  request: DialRequest,
  presented: string | undefined,
): boolean {
  return sameProof(proof(secret, 'accept', request), presented);
}

/** Remembers nonces seen within the replay window. */
export class ReplayGuard {
  readonly #seen = new Map<string, number>();

  /** True the first time a nonce is offered inside the window. */
  admit(nonce: string, now: number): boolean {
    if (this.#seen.size > 10_000) {
      for (const [seen, expires] of this.#seen) if (expires <= now) this.#seen.delete(seen);
    }
    const expires = this.#seen.get(nonce);
    if (expires !== undefined && expires > now) return false;
    this.#seen.set(nonce, now + 2 * REPLAY_WINDOW_MS);
    return true;
  }
}

export function verifyDial(
  secret: string,
  me: string,
  headers: IncomingHttpHeaders,
  replay: ReplayGuard,
  now = Date.now(),
): { ok: true; request: DialRequest } | { ok: false; reason: MeshAuthFailure } {
  const read = (name: string): string | undefined => {
    const value = headers[name];
    return typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH ? value : undefined;
  };
  const from = read(MESH_HEADER.from);
  const to = read(MESH_HEADER.to);
  const timeText = read(MESH_HEADER.time);
  const nonce = read(MESH_HEADER.nonce);
  const presented = read(MESH_HEADER.proof);
  if (!from || !to || !timeText || !nonce || !presented) return { ok: false, reason: 'missing_header' };
  const time = Number(timeText);
  if (!Number.isSafeInteger(time) || Math.abs(now - time) > REPLAY_WINDOW_MS) {
    return { ok: false, reason: 'stale_timestamp' };
  }
  const request: DialRequest = { from, to, time, nonce };
  // The proof first: nothing below may be learned without the secret.
  if (!sameProof(proof(secret, 'dial', request), presented)) return { ok: false, reason: 'bad_proof' };
  if (to !== me) return { ok: false, reason: 'wrong_instance' };
  if (!replay.admit(nonce, now)) return { ok: false, reason: 'replayed_nonce' };
  return { ok: true, request };
}
