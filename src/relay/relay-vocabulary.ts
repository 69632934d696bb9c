import { PROTOCOL_VIOLATIONS, type ProtocolViolation } from '../protocol/codec.js';

// The relay's closed sets of outcomes: why a handshake failed, why a session
// closed, why a message was dropped. Each is a metric label (snake_case) and
// part of what the relay promises operators, so a new member is a README change.
// The session-close set is also a list at run time: its counter starts every
// reason at 0, so a dashboard's rate() has two samples before the first close.

export type HandshakeFailure =
  | ProtocolViolation
  | 'timeout'
  | 'malformed_token'
  | 'unknown_algorithm'
  | 'bad_signature'
  | 'expired_token'
  | 'text_frame'
  | 'registry_unavailable'
  | 'draining'
  | 'socket_error'
  | WsFrameError;

/** Frames ws refuses on its own (its error codes mapped in the session). */
const WS_FRAME_ERRORS = [
  'ws_compressed_frame',
  'ws_reserved_bits',
  'ws_unmasked_frame',
  'ws_invalid_opcode',
  'ws_fragmented_control',
  'ws_control_too_long',
  'ws_invalid_close',
  'ws_invalid_utf8',
] as const;

export type WsFrameError = (typeof WS_FRAME_ERRORS)[number];

export type MessageDropReason = 'queue_full' | 'session_closed' | 'unknown_peer' | 'not_routable';

/** Ends that are not the peer's fault: closed with a normal WebSocket code. */
export const ORDERLY_CLOSE_REASONS = [
  'client_close',
  'socket_closed',
  'health_check_timeout',
  'replaced',
  'superseded',
  'registration_lost',
  'drain',
  'rebalance',
] as const;

export const SESSION_CLOSE_REASONS = [
  ...PROTOCOL_VIOLATIONS,
  ...ORDERLY_CLOSE_REASONS,
  'control_overflow',
  'subscription_limit',
  'text_frame',
  ...WS_FRAME_ERRORS,
] as const;

export type SessionCloseReason = (typeof SESSION_CLOSE_REASONS)[number];
