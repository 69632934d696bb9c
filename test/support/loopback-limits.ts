/**
 * Relay settings for a test or bench whose many clients all come from 127.0.0.1: the per-IP
 * limits are meant for one address among many, not for a whole fleet on one address (the
 * abuse-limit tests check the limits themselves).
 */
export const NO_PER_IP_LIMITS: Readonly<Record<string, string>> = {
  NB_CONNECT_RATE: '0',
  NB_HANDSHAKE_RATE: '0',
  NB_MAX_CONNECTIONS_PER_IP: '0',
};
