import { expect } from 'vitest';
import { MessageType, TRANSPORT_HEADER_SIZE } from '../../../src/protocol/constants.js';
import type { RelayTestClient } from '../../support/relay-test-client.js';

/** Sends `text` from one peer to the other and expects it, with the sender's ID, on the far side. */
export async function exchange(from: RelayTestClient, to: RelayTestClient, text: string): Promise<void> {
  from.sendTransport(to.peerId, Buffer.from(text));
  let message = await to.next(10_000);
  while (message[1] !== MessageType.Transport) message = await to.next(10_000);
  expect(message.subarray(2, TRANSPORT_HEADER_SIZE)).toEqual(from.peerId);
  expect(message.subarray(TRANSPORT_HEADER_SIZE).toString()).toBe(text);
}
