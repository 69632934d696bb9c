import type { PeerKey } from '../protocol/peer-id.js';

/**
 * How the relay hands a transport message to a peer on another instance (the
 * cluster mesh implements it). The message already carries the sender's ID.
 */
export interface RemoteDelivery {
  /** Queues the message for `peer` on `instance`; false when it was dropped (counted by the implementer). */
  forward(instance: string, peer: PeerKey, message: Buffer): boolean;
}
