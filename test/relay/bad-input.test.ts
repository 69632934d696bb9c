import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateToken } from '../../src/auth/hmac-token.js';
import { encodeAuth, encodeTransport } from '../../src/protocol/codec.js';
import {
  AUTH_MAGIC,
  MAX_MESSAGE_SIZE,
  MessageType,
  TRANSPORT_HEADER_SIZE,
} from '../../src/protocol/constants.js';
import { peerIdFromIdentifier } from '../../src/protocol/peer-id.js';
import { metricValue } from '../support/metric-value.js';
import { RelayTestClient } from '../support/relay-test-client.js';
import { startInProcessRelay, TEST_SECRET, type InProcessRelay } from '../support/in-process-relay.js';

let relay: InProcessRelay;
let bystanderA: RelayTestClient;
let bystanderB: RelayTestClient;
let n = 0;
const id = (): Buffer => peerIdFromIdentifier(`bad-input-${process.pid}-${++n}`);
const goodToken = (): Buffer => generateToken(TEST_SECRET, 600);

beforeAll(async () => {
  relay = await startInProcessRelay({ NB_HANDSHAKE_TIMEOUT: '400ms' });
  bystanderA = await RelayTestClient.connect(relay.url, { identifier: 'bystander-a', secret: TEST_SECRET });
  bystanderB = await RelayTestClient.connect(relay.url, { identifier: 'bystander-b', secret: TEST_SECRET });
});
afterAll(async () => {
  bystanderA.close();
  bystanderB.close();
  await relay.stop();
});

/** Bystanders keep relaying whatever happened to the others. */
async function expectBystandersUnaffected(): Promise<void> {
  const payload = Buffer.from(`still here ${++n}`);
  bystanderA.sendTransport(bystanderB.peerId, payload);
  expect((await bystanderB.next()).subarray(TRANSPORT_HEADER_SIZE)).toEqual(payload);
}

/** The server must close without sending a single message. */
async function expectSilentClose(client: RelayTestClient): Promise<void> {
  await client.closed;
  expect(client.pending()).toBe(0);
}

const handshakeCases: [string, string, () => Buffer | string][] = [
  ['empty message', 'empty_message', () => Buffer.alloc(0)],
  [
    'wrong version',
    'bad_version',
    () => Buffer.concat([Buffer.from([2, MessageType.Auth]), AUTH_MAGIC, id(), goodToken()]),
  ],
  ['unknown type', 'unknown_type', () => Buffer.from([1, 12])],
  ['type 0', 'unknown_type', () => Buffer.from([1, 0])],
  ['legacy hello', 'legacy_type', () => Buffer.from([1, MessageType.LegacyHello, ...AUTH_MAGIC, ...id()])],
  ['legacy hello response', 'legacy_type', () => Buffer.from([1, MessageType.LegacyHelloResponse])],
  ['text frame', 'text_frame', () => 'hello'],
  [
    'oversize auth',
    'oversize_message',
    () => encodeAuth(id(), Buffer.concat([goodToken(), Buffer.alloc(200, 0x31)])),
  ],
  [
    'truncated auth',
    'truncated_message',
    () => Buffer.concat([Buffer.from([1, MessageType.Auth]), AUTH_MAGIC, id().subarray(0, 20)]),
  ],
  [
    'wrong magic',
    'bad_magic',
    () => Buffer.concat([Buffer.from([1, MessageType.Auth, 0x21, 0x12, 0xa4, 0x43]), id(), goodToken()]),
  ],
  ['forged token', 'bad_signature', () => encodeAuth(id(), generateToken('some-other-secret', 600))],
  ['expired token', 'expired_token', () => encodeAuth(id(), generateToken(TEST_SECRET, -10))],
  [
    'unknown token algorithm',
    'unknown_algorithm',
    () => encodeAuth(id(), Buffer.concat([Buffer.from([2]), goodToken().subarray(1)])),
  ],
  ['truncated token', 'malformed_token', () => encodeAuth(id(), goodToken().subarray(0, 20))],
  ['transport before auth', 'unexpected_type', () => encodeTransport(id(), Buffer.from('x'))],
  [
    'subscribe before auth',
    'unexpected_type',
    () => Buffer.concat([Buffer.from([1, MessageType.SubscribePeerState]), id()]),
  ],
];

describe('handshake failures close without a reply, are counted, and disturb no one', () => {
  it.each(handshakeCases)('%s', async (_name, reason, build) => {
    const before = await metricValue(relay.metrics, 'relay_handshake_failures_total', { reason });
    const client = await RelayTestClient.open(relay.url);
    const message = build();
    client.ws.send(message, { binary: typeof message !== 'string' });
    await expectSilentClose(client);
    expect(await metricValue(relay.metrics, 'relay_handshake_failures_total', { reason })).toBe(before + 1);
    await expectBystandersUnaffected();
  });

  it('no auth within the handshake deadline', async () => {
    const before = await metricValue(relay.metrics, 'relay_handshake_failures_total', { reason: 'timeout' });
    const client = await RelayTestClient.open(relay.url);
    await expectSilentClose(client);
    expect(await metricValue(relay.metrics, 'relay_handshake_failures_total', { reason: 'timeout' })).toBe(
      before + 1,
    );
    await expectBystandersUnaffected();
  });
});

const sessionCases: [string, string, () => Buffer | string][] = [
  [
    'peer list not a multiple of 36',
    'bad_peer_list',
    () => Buffer.concat([Buffer.from([1, MessageType.SubscribePeerState]), id().subarray(0, 35)]),
  ],
  [
    'message one byte over the limit',
    'oversize_message',
    () => encodeTransport(id(), Buffer.alloc(MAX_MESSAGE_SIZE - 37)),
  ],
  ['message far over the limit', 'oversize_message', () => encodeTransport(id(), Buffer.alloc(64 * 1024))],
  ['text frame', 'text_frame', () => 'hello'],
  ['wrong version', 'bad_version', () => Buffer.from([9, MessageType.HealthCheck])],
  ['legacy type', 'legacy_type', () => Buffer.from([1, MessageType.LegacyHello])],
  ['empty message', 'empty_message', () => Buffer.alloc(0)],
  ['truncated transport', 'truncated_message', () => Buffer.from([1, MessageType.Transport, 0x73, 0x68])],
  ['a second auth', 'unexpected_type', () => encodeAuth(id(), goodToken())],
  ['a server-only type', 'unexpected_type', () => Buffer.from([1, MessageType.PeersOnline])],
];

describe('protocol errors of an authenticated peer close its session, counted', () => {
  it.each(sessionCases)('%s', async (_name, reason, build) => {
    const before = await metricValue(relay.metrics, 'relay_session_closes_total', { reason });
    const client = await RelayTestClient.connect(relay.url, {
      identifier: `offender-${++n}`,
      secret: TEST_SECRET,
    });
    const message = build();
    client.ws.send(message, { binary: typeof message !== 'string' });
    await client.closed;
    expect(await metricValue(relay.metrics, 'relay_session_closes_total', { reason })).toBe(before + 1);
    await expectBystandersUnaffected();
  });
});
