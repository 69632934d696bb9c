import { formatPeerKey, type PeerKey } from '../../../src/protocol/peer-id.js';
import { redisCommand } from '../../support/redis-server.js';

/**
 * The pod that holds a peer's newest session, from what the relays' Redis holds (route -> instance
 * -> pod); '' while the peer has no route.
 */
export async function podOfPeer(redisPort: number, peer: PeerKey): Promise<string> {
  const route = await redisCommand(redisPort, `GET nbrelay:peer:{${formatPeerKey(peer)}}`);
  const instance = route.split('\r\n')[1]?.split('|')[1];
  if (!instance) return '';
  const info = await redisCommand(redisPort, `HGET nbrelay:{cluster}:info ${instance}`);
  return info.split('\r\n')[1]?.split('|')[1] ?? '';
}
