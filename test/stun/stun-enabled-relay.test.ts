import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildBindingRequest,
  decodeXorMappedAddress,
  findAttribute,
  parseStunMessage,
  STUN_ATTR_XOR_MAPPED_ADDRESS,
} from '../../src/stun/stun-message.js';
import { freePort } from '../support/free-port.js';
import { metricValue } from '../support/metric-value.js';
import { startInProcessRelay, type InProcessRelay } from '../support/in-process-relay.js';

let relay: InProcessRelay;
let stunPort: number;

beforeAll(async () => {
  stunPort = await freePort(); // a TCP probe; UDP of the same number is free in practice on loopback
  relay = await startInProcessRelay({ NB_ENABLE_STUN: 'true', NB_STUN_PORTS: String(stunPort) });
});
afterAll(async () => {
  await relay.stop();
});

describe('relay with NB_ENABLE_STUN', () => {
  it('answers a binding request with the sender address, and counts malformed datagrams', async () => {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const transactionId = randomBytes(12);
    socket.send(Buffer.from('garbage'), stunPort, '127.0.0.1');
    socket.send(buildBindingRequest(transactionId), stunPort, '127.0.0.1');
    const [reply] = (await once(socket, 'message')) as [Buffer];
    const parsed = parseStunMessage(reply);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.message.transactionId).toEqual(transactionId);
    const attribute = findAttribute(parsed.message, STUN_ATTR_XOR_MAPPED_ADDRESS);
    expect(decodeXorMappedAddress(attribute!.value, transactionId)).toEqual({
      family: 'IPv4',
      address: '127.0.0.1',
      port: socket.address().port,
    });
    expect(await metricValue(relay.metrics, 'relay_stun_requests_total')).toBe(1);
    expect(await metricValue(relay.metrics, 'relay_stun_malformed_total')).toBe(1);
    socket.close();
  });
});
