import { PEER_ID_SIZE } from '../protocol/constants.js';
import { hasPeerIdShape, peerIdFromIdentifier, peerKeyFromBytes, type PeerKey } from '../protocol/peer-id.js';

/**
 * A peer as callers name it: a string is the identifier NetBird hashes into a
 * peer ID (the WireGuard public key, base64); a Buffer is the 36-byte wire ID.
 */
export type PeerIdentity = string | Buffer;

export function peerIdOf(peer: PeerIdentity): Buffer {
  if (typeof peer === 'string') return peerIdFromIdentifier(peer);
  if (peer.length !== PEER_ID_SIZE || !hasPeerIdShape(peer)) {
    throw new RangeError(`a peer ID is ${PEER_ID_SIZE} bytes starting with "sha-"`);
  }
  return Buffer.from(peer);
}

export function peerKeyOf(peer: PeerIdentity): PeerKey {
  return peerKeyFromBytes(peerIdOf(peer));
}
