/** Why a relay client operation failed; stable strings callers may switch on. */
export type RelayClientErrorCode =
  | 'invalid_url'
  | 'connect_failed'
  | 'auth_timeout'
  | 'auth_rejected'
  | 'unexpected_first_message'
  | 'oversize_message'
  | 'malformed_message'
  | 'health_check_timeout'
  | 'closed_by_server'
  | 'connection_lost'
  | 'not_connected'
  | 'client_closed'
  | 'connection_already_exists'
  | 'open_timeout'
  | 'open_aborted'
  | 'peer_offline'
  | 'connection_closed'
  | 'payload_too_large';

export class RelayClientError extends Error {
  override readonly name = 'RelayClientError';
  readonly code: RelayClientErrorCode;

  constructor(code: RelayClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export function isRelayClientError(err: unknown, code?: RelayClientErrorCode): err is RelayClientError {
  return err instanceof RelayClientError && (code === undefined || err.code === code);
}
