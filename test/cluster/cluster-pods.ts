import { expect } from 'vitest';
import { MessageType, TRANSPORT_HEADER_SIZE } from '../../src/protocol/constants.js';
import { formatPeerKey, type PeerKey } from '../../src/protocol/peer-id.js';
import { freePort } from '../support/free-port.js';
import { TEST_SECRET } from '../support/in-process-relay.js';
import { RelayProcess } from '../support/relay-process.js';
import { RelayTestClient, describeMessage } from '../support/relay-test-client.js';

/** Helpers of the multi-process cluster tests: relay pods and protocol assertions. */

export const CLUSTER_SECRET = 'cluster-test-secret';
export const PUBLIC_URL = 'rel://cluster.test:443';

export interface Pod {
  name: string;
  meshPort: number;
  process: RelayProcess;
}

/** Starts a relay process in cluster mode; `redisEnv` picks the Redis deployment. */
export async function startPod(
  name: string,
  redisEnv: Record<string, string>,
  options: { meshPort?: number; advertisePort?: number; logLevel?: string; cliPath?: string } = {},
): Promise<Pod> {
  const meshPort = options.meshPort ?? (await freePort());
  const relay = await RelayProcess.start({
    exposedAddress: PUBLIC_URL,
    ...(options.cliPath ? { cliPath: options.cliPath } : {}),
    env: {
      ...redisEnv,
      NB_CLUSTER_SECRET: CLUSTER_SECRET,
      NB_MESH_LISTEN_ADDRESS: `127.0.0.1:${meshPort}`,
      NB_MESH_ADVERTISE_ADDRESS: `127.0.0.1:${options.advertisePort ?? meshPort}`,
      NB_POD_NAME: name,
      NB_LOG_LEVEL: options.logLevel ?? process.env.TEST_LOG_LEVEL ?? 'warn',
    },
  });
  return { name, meshPort, process: relay };
}

export async function connectPeer(pod: Pod, identifier: string): Promise<RelayTestClient> {
  return await RelayTestClient.connect(`rel://127.0.0.1:${pod.process.port}`, {
    identifier,
    secret: TEST_SECRET,
  });
}

/** The next message must be a peer-state notice of `type` naming `peer`. */
export async function expectPeerState(
  client: RelayTestClient,
  type: typeof MessageType.PeersOnline | typeof MessageType.PeersWentOffline,
  peer: RelayTestClient,
  timeoutMs = 5_000,
): Promise<void> {
  const described = describeMessage(await client.next(timeoutMs));
  const printable = (peers: string[]): string[] => peers.map((id) => formatPeerKey(id as PeerKey));
  expect({ type: described.type, peers: printable(described.peers) }).toEqual({
    type,
    peers: printable([peer.peerKey]),
  });
}

/** The next message must be transport from `sender` carrying `payload`. */
export async function expectTransport(
  client: RelayTestClient,
  sender: RelayTestClient,
  payload: string,
  timeoutMs = 5_000,
): Promise<void> {
  const message = await client.next(timeoutMs);
  expect(message[1]).toBe(MessageType.Transport);
  expect(message.subarray(2, 38).equals(sender.peerId)).toBe(true);
  expect(message.subarray(TRANSPORT_HEADER_SIZE).toString()).toBe(payload);
}

/** Subscribes `subscriber` to `peer` and waits for the immediate (or first) online answer. */
export async function awaitOnline(subscriber: RelayTestClient, peer: RelayTestClient): Promise<void> {
  subscriber.subscribe([peer.peerId]);
  await expectPeerState(subscriber, MessageType.PeersOnline, peer);
}

/**
 * Like awaitOnline, and leaves the one-shot online interest armed for the peer's
 * next session. If the subscriber's pod had not heard of the peer yet, the first
 * answer came from the online event, which consumes the interest (PROTOCOL.md):
 * a second subscribe is then answered at once and keeps it.
 */
export async function watchPeer(subscriber: RelayTestClient, peer: RelayTestClient): Promise<void> {
  await awaitOnline(subscriber, peer);
  await awaitOnline(subscriber, peer);
}

/** A TCP forwarder in front of a pod's mesh port, so a test can cut its links as a network failure would. */
export { TcpForwarder as MeshCutter } from '../support/tcp-forwarder.js';
