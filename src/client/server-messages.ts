import { parseAuthResponse, parsePeerList, readMessageType, transportPeerKey } from '../protocol/codec.js';
import { MAX_AUTH_RESPONSE_SIZE, MAX_MESSAGE_SIZE, MessageType } from '../protocol/constants.js';
import type { PeerKey } from '../protocol/peer-id.js';
import { RelayClientError } from './relay-client-error.js';

// What the relay sends a client, checked as NetBird's client checks it: each
// violation is a RelayClientError that ends the session.

/** The instance URL of the relay's first message, which must be the auth response. */
export function readAuthResponse(data: Buffer): string | RelayClientError {
  const type = readMessageType(data);
  if (!type.ok)
    return new RelayClientError('malformed_message', `relay sent a bad first message (${type.violation})`);
  if (type.value !== MessageType.AuthResponse) {
    return new RelayClientError(
      'unexpected_first_message',
      `relay sent message type ${type.value} before the auth response`,
    );
  }
  if (data.length > MAX_AUTH_RESPONSE_SIZE) {
    return new RelayClientError(
      'oversize_message',
      `auth response of ${data.length} bytes exceeds ${MAX_AUTH_RESPONSE_SIZE}`,
    );
  }
  const parsed = parseAuthResponse(data);
  if (!parsed.ok) return new RelayClientError('malformed_message', `bad auth response (${parsed.violation})`);
  return parsed.value;
}

/** A message of an established session; the transport payload is read from the message itself. */
export type SessionMessage =
  | { readonly type: typeof MessageType.HealthCheck }
  | { readonly type: typeof MessageType.Transport; readonly sender: PeerKey }
  | {
      readonly type: typeof MessageType.PeersOnline | typeof MessageType.PeersWentOffline;
      readonly peers: PeerKey[];
    };

export function readSessionMessage(data: Buffer, relayUrl: string): SessionMessage | RelayClientError {
  const type = readMessageType(data);
  if (!type.ok)
    return new RelayClientError('malformed_message', `relay sent a bad message (${type.violation})`);
  switch (type.value) {
    case MessageType.HealthCheck:
      return { type: type.value };
    case MessageType.Transport: {
      const sender = transportPeerKey(data);
      if (!sender.ok)
        return new RelayClientError('malformed_message', `bad transport message (${sender.violation})`);
      return { type: type.value, sender: sender.value };
    }
    case MessageType.PeersOnline:
    case MessageType.PeersWentOffline: {
      const peers = parsePeerList(data);
      if (!peers.ok) return new RelayClientError('malformed_message', `bad peer list (${peers.violation})`);
      return { type: type.value, peers: peers.value };
    }
    case MessageType.Close:
      return new RelayClientError('closed_by_server', `relay ${relayUrl} closed the session`);
    default:
      return new RelayClientError(
        'malformed_message',
        `relay sent message type ${type.value}, which servers never send`,
      );
  }
}

/** A socket error, by what it says about the relay: too large, broken protocol, or a lost connection. */
export function describeSocketError(
  err: Error & { code?: string },
  { established }: { established: boolean },
): RelayClientError {
  if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
    return new RelayClientError(
      'oversize_message',
      `relay sent a message larger than ${MAX_MESSAGE_SIZE} bytes`,
      {
        cause: err,
      },
    );
  }
  if (err.code?.startsWith('WS_ERR_')) {
    return new RelayClientError('malformed_message', `relay broke the WebSocket protocol: ${err.message}`, {
      cause: err,
    });
  }
  const phase = established ? 'connection_lost' : 'connect_failed';
  return new RelayClientError(phase, `relay socket error: ${err.message}`, { cause: err });
}

/** The relay closed the socket without an error of ours: before the auth response it refused the token. */
export function describeClose(
  code: number,
  relayUrl: string,
  { duringHandshake }: { duringHandshake: boolean },
): RelayClientError {
  return duringHandshake
    ? new RelayClientError(
        'auth_rejected',
        `relay ${relayUrl} closed the connection before the auth response (code ${code}); is the token valid?`,
      )
    : new RelayClientError('connection_lost', `connection to relay ${relayUrl} closed (code ${code})`);
}

export function describeRefusedUpgrade(status: number | undefined): RelayClientError {
  return new RelayClientError(
    'connect_failed',
    `relay answered HTTP ${status} instead of a WebSocket upgrade`,
  );
}
