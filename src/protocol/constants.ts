/** Wire constants of NetBird relay protocol v1 (see PROTOCOL.md). */

export const PROTOCOL_VERSION = 1;

export const MessageType = {
  Unknown: 0,
  LegacyHello: 1,
  LegacyHelloResponse: 2,
  Transport: 3,
  Close: 4,
  HealthCheck: 5,
  Auth: 6,
  AuthResponse: 7,
  SubscribePeerState: 8,
  UnsubscribePeerState: 9,
  PeersOnline: 10,
  PeersWentOffline: 11,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export const HEADER_SIZE = 2;
export const PEER_ID_SIZE = 36;
/** Magic bytes that follow the header of an auth message. */
export const AUTH_MAGIC = Buffer.from([0x21, 0x12, 0xa4, 0x42]);

/** Largest auth message a client may send. */
export const MAX_AUTH_MESSAGE_SIZE = 212;
/** Largest auth response the client accepts. */
export const MAX_AUTH_RESPONSE_SIZE = 8192;
/** Clients read into a buffer of this size: nothing larger may be sent or accepted. */
export const MAX_MESSAGE_SIZE = 8820;
/** Peer-ID lists are split so that one message stays within MAX_MESSAGE_SIZE. */
export const MAX_PEER_IDS_PER_MESSAGE = Math.floor((MAX_MESSAGE_SIZE - HEADER_SIZE) / PEER_ID_SIZE);

export const TRANSPORT_HEADER_SIZE = HEADER_SIZE + PEER_ID_SIZE;
