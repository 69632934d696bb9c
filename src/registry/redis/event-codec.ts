import { parsePrintedPeerId, type PeerKey } from '../../protocol/peer-id.js';

/** A peer event as the Lua scripts publish it: "kind|peer|token|instance|session|epoch|ms". */
export interface RedisPeerEvent {
  kind: 'online' | 'offline';
  peer: PeerKey;
  token: number;
  instance: string;
  /** First token of the session; a restore keeps it, so receivers can tell "same session, new token". */
  session: number;
  epoch: string;
  /** Redis clock at publish time (ms), for the event lag metric. */
  publishedAt: number;
}

/** Parses one published event; undefined when it is not one of ours. */
export function decodeRedisPeerEvent(message: string): RedisPeerEvent | undefined {
  const parts = message.split('|');
  if (parts.length !== 7) return undefined;
  const [kind, printed, token, instance, session, epoch, publishedAt] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (kind !== 'on' && kind !== 'off') return undefined;
  const peer = parsePrintedPeerId(printed);
  if (peer === undefined) return undefined;
  return {
    kind: kind === 'on' ? 'online' : 'offline',
    peer,
    token: Number(token),
    instance,
    session: Number(session),
    epoch,
    publishedAt: Number(publishedAt),
  };
}
