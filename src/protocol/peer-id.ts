import { createHash } from 'node:crypto';
import { PEER_ID_SIZE } from './constants.js';

const PREFIX = Buffer.from('sha-', 'ascii');

/**
 * A peer ID in its compact form: the 36 wire bytes as a latin1 string. It is a
 * cheap, exact Map key and converts back to the wire bytes without loss.
 */
export type PeerKey = string & { readonly __peerKey: unique symbol };

/** The peer ID NetBird derives from an identifier (its WireGuard public key, base64). */
export function peerIdFromIdentifier(identifier: string): Buffer {
  const id = Buffer.allocUnsafe(PEER_ID_SIZE);
  PREFIX.copy(id, 0);
  createHash('sha256').update(identifier).digest().copy(id, PREFIX.length);
  return id;
}

/** True when the bytes at `offset` form a well-shaped peer ID ("sha-" + 32 bytes). */
export function hasPeerIdShape(buf: Buffer, offset = 0): boolean {
  return (
    buf.length >= offset + PEER_ID_SIZE &&
    buf[offset] === 0x73 &&
    buf[offset + 1] === 0x68 &&
    buf[offset + 2] === 0x61 &&
    buf[offset + 3] === 0x2d
  );
}

export function peerKeyAt(buf: Buffer, offset: number): PeerKey {
  return buf.toString('latin1', offset, offset + PEER_ID_SIZE) as PeerKey;
}

export function peerKeyFromBytes(id: Buffer): PeerKey {
  return peerKeyAt(id, 0);
}

export function peerKeyToBytes(key: PeerKey): Buffer {
  return Buffer.from(key, 'latin1');
}

/** Human form as NetBird prints it: "sha-" + standard base64 of the hash. */
export function formatPeerKey(key: PeerKey): string {
  return 'sha-' + Buffer.from(key.slice(4), 'latin1').toString('base64');
}

/** Inverse of formatPeerKey; undefined when the text is not a printed peer ID. */
export function parsePrintedPeerId(text: string): PeerKey | undefined {
  if (!text.startsWith('sha-')) return undefined;
  const hash = Buffer.from(text.slice(4), 'base64');
  if (hash.length !== PEER_ID_SIZE - PREFIX.length) return undefined;
  return ('sha-' + hash.toString('latin1')) as PeerKey;
}
