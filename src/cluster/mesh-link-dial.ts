import type { MeshLinkContext } from './mesh-link-options.js';
import { MESH_HEADER, MESH_PATH, dialHeaders, isValidAcceptProof } from './mesh-auth.js';
import type { MeshSocket } from './mesh-socket.js';
import { dialUpgrade, type MeshDial } from './mesh-upgrade.js';

/**
 * Dials another instance's mesh listener and checks that it proved the shared
 * secret in its upgrade response. `done` gets the socket (not started yet), or
 * undefined when the dial failed or the other side could not prove the secret
 * (counted and logged here). It is not called after `abort()`.
 */
export function dialMeshLink(
  context: MeshLinkContext,
  remoteInstance: string,
  address: string,
  done: (socket: MeshSocket | undefined) => void,
): MeshDial {
  const { headers, request } = dialHeaders(context.secret, context.localInstance, remoteInstance);
  const { handshakeTimeoutMs, maxPayload } = context.limits;
  return dialUpgrade(
    address,
    MESH_PATH,
    headers,
    { timeoutMs: handshakeTimeoutMs, maxPayload },
    (outcome) => {
      if ('error' in outcome) {
        context.logger.debug(
          { err: outcome.error, remote_instance: remoteInstance, address },
          'mesh dial failed',
        );
        done(undefined);
        return;
      }
      const presented = outcome.response.headers[MESH_HEADER.proof];
      const proof = typeof presented === 'string' ? presented : undefined;
      if (!isValidAcceptProof(context.secret, request, proof)) {
        context.metrics.authFailures.inc({ reason: 'bad_accept_proof' });
        context.logger.warn(
          { remote_instance: remoteInstance, address },
          'mesh peer failed to prove the secret',
        );
        outcome.socket.terminate();
        done(undefined);
        return;
      }
      done(outcome.socket);
    },
  );
}
