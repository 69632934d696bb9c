import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import type { Socket, SocketType } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import {
  STUN_ATTR_SOFTWARE,
  STUN_ATTR_XOR_MAPPED_ADDRESS,
  STUN_BINDING_SUCCESS_RESPONSE,
  buildBindingRequest,
  buildBindingSuccessResponse,
  decodeXorMappedAddress,
  findAttribute,
  parseStunMessage,
} from '../../src/stun/stun-message.js';
import type { MappedAddress, StunMalformedReason } from '../../src/stun/stun-message.js';
import { StunServer } from '../../src/stun/stun-server.js';
import type { StunServerOptions } from '../../src/stun/stun-server.js';

const REPLY_TIMEOUT_MS = 2_000;

const hasIpv6Loopback = Object.values(networkInterfaces())
  .flat()
  .some((info) => info?.address === '::1');

interface Reply {
  transactionId: string;
  mapped: MappedAddress | undefined;
  software: string | undefined;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

async function startServer(options: Partial<StunServerOptions> & { host: string }) {
  const reasons: StunMalformedReason[] = [];
  const errors: Error[] = [];
  let requests = 0;
  const server = new StunServer({
    ports: [0],
    onRequest: () => requests++,
    onMalformed: (reason) => reasons.push(reason),
    onError: (err) => errors.push(err),
    ...options,
  });
  await server.start();
  cleanups.push(() => server.stop());
  return { server, reasons, errors, requests: () => requests };
}

async function openClient(type: SocketType, host: string, port = 0): Promise<Socket> {
  const socket = createSocket(type);
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  cleanups.push(() => closeQuietly(socket));
  return socket;
}

function closeQuietly(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve(); // closed by the test already
    }
  });
}

/** Resolves with the next datagram the client receives, decoded; rejects after a timeout. */
function nextReply(client: Socket): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('message', onMessage);
      reject(new Error(`no STUN reply within ${REPLY_TIMEOUT_MS} ms`));
    }, REPLY_TIMEOUT_MS);
    const onMessage = (datagram: Buffer): void => {
      clearTimeout(timer);
      client.off('message', onMessage);
      const parsed = parseStunMessage(datagram);
      if (!parsed.ok) {
        reject(new Error(`server sent a malformed reply: ${parsed.reason}`));
        return;
      }
      const { message } = parsed;
      if (message.type !== STUN_BINDING_SUCCESS_RESPONSE) {
        reject(new Error(`unexpected reply type 0x${message.type.toString(16)}`));
        return;
      }
      const xorMapped = findAttribute(message, STUN_ATTR_XOR_MAPPED_ADDRESS);
      resolve({
        transactionId: message.transactionId.toString('hex'),
        mapped: xorMapped && decodeXorMappedAddress(xorMapped.value, message.transactionId),
        software: findAttribute(message, STUN_ATTR_SOFTWARE)?.value.toString('utf8'),
      });
    };
    client.on('message', onMessage);
  });
}

function send(client: Socket, datagram: Buffer, target: { address: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) =>
    client.send(datagram, target.port, target.address, (err) => (err ? reject(err) : resolve())),
  );
}

async function request(client: Socket, target: { address: string; port: number }) {
  const transactionId = randomBytes(12);
  const reply = nextReply(client);
  await send(client, buildBindingRequest(transactionId), target);
  return { transactionId: transactionId.toString('hex'), reply: await reply };
}

const families = [
  { name: 'IPv4 (127.0.0.1)', type: 'udp4', host: '127.0.0.1', family: 'IPv4', available: true },
  {
    name: hasIpv6Loopback ? 'IPv6 (::1)' : 'IPv6 (::1) SKIPPED: no IPv6 loopback (::1) on this host',
    type: 'udp6',
    host: '::1',
    family: 'IPv6',
    available: hasIpv6Loopback,
  },
] as const;

describe.each(families)('StunServer over $name', ({ type, host, family, available }) => {
  it.skipIf(!available)('answers a binding request with the client address and transaction id', async () => {
    const { server, requests } = await startServer({ host, software: 'nb-cluster-relay' });
    const [target] = server.addresses();
    const client = await openClient(type, host);

    const { transactionId, reply } = await request(client, target!);

    expect(reply.transactionId).toBe(transactionId);
    expect(reply.mapped).toEqual({ family, address: host, port: client.address().port });
    expect(reply.software).toBe('nb-cluster-relay');
    expect(requests()).toBe(1);
  });

  it.skipIf(!available)('serves every configured port', async () => {
    const { server } = await startServer({ host, ports: [0, 0] });
    const targets = server.addresses();
    expect(targets).toHaveLength(2);
    expect(targets[0]!.port).not.toBe(targets[1]!.port);
    const client = await openClient(type, host);

    for (const target of targets) {
      const { transactionId, reply } = await request(client, target);
      expect(reply.transactionId).toBe(transactionId);
      expect(reply.mapped?.port).toBe(client.address().port);
    }
  });

  const validRequest = buildBindingRequest(Buffer.alloc(12, 0xab), 'probe');
  const withByte = (offset: number, value: number): Buffer => {
    const copy = Buffer.from(validRequest);
    copy[offset] = value;
    return copy;
  };
  const badDatagrams: [StunMalformedReason, Buffer][] = [
    ['too_short', validRequest.subarray(0, 12)],
    ['bad_cookie', withByte(7, 0x43)],
    ['bad_length', Buffer.concat([validRequest, Buffer.alloc(4)])],
    ['truncated_attribute', withByte(23, 40)],
    [
      'not_binding_request',
      buildBindingSuccessResponse({ transactionId: Buffer.alloc(12), address: host, port: 9 }),
    ],
  ];

  it.skipIf(!available).each(badDatagrams)(
    'ignores a %s datagram and keeps answering',
    async (reason, badDatagram) => {
      const { server, reasons, requests } = await startServer({ host });
      const [target] = server.addresses();
      const client = await openClient(type, host);

      // The server handles datagrams in arrival order, so if the bad one had been answered,
      // its reply would come before the good one's.
      await send(client, badDatagram, target!);
      const { transactionId, reply } = await request(client, target!);

      expect(reply.transactionId).toBe(transactionId);
      expect(reasons).toEqual([reason]);
      expect(requests()).toBe(1);
    },
  );
});

describe('StunServer', () => {
  it.skipIf(!hasIpv6Loopback)(
    `answers IPv4 clients of a dual-stack "::" socket with IPv4${hasIpv6Loopback ? '' : ' (SKIPPED: no IPv6 loopback)'}`,
    async () => {
      const { server } = await startServer({ host: '::' });
      const [bound] = server.addresses();
      const client = await openClient('udp4', '127.0.0.1');

      const { transactionId, reply } = await request(client, { address: '127.0.0.1', port: bound!.port });

      expect(reply.transactionId).toBe(transactionId);
      expect(reply.mapped).toEqual({ family: 'IPv4', address: '127.0.0.1', port: client.address().port });
    },
  );

  it('reports a socket error via onError and keeps serving', async () => {
    const { server, errors } = await startServer({ host: '127.0.0.1' });
    const [target] = server.addresses();
    // White-box: no portable way to make a bound UDP socket fail, so emit the event it would.
    const sockets = (server as unknown as { sockets: Socket[] }).sockets;
    sockets[0]!.emit('error', new Error('simulated socket failure'));
    expect(errors.map((err) => err.message)).toEqual(['simulated socket failure']);

    const client = await openClient('udp4', '127.0.0.1');
    const { transactionId, reply } = await request(client, target!);
    expect(reply.transactionId).toBe(transactionId);
  });

  it('still answers when a metrics callback throws, and reports the exception', async () => {
    const { server, errors } = await startServer({
      host: '127.0.0.1',
      onRequest: () => {
        throw new Error('metrics broke');
      },
    });
    const client = await openClient('udp4', '127.0.0.1');

    const { transactionId, reply } = await request(client, server.addresses()[0]!);

    expect(reply.transactionId).toBe(transactionId);
    expect(errors.map((err) => err.message)).toEqual(['metrics broke']);
  });

  it('rejects start() when a port is taken and releases the ports it already bound', async () => {
    const occupier = await openClient('udp4', '127.0.0.1');
    const takenPort = occupier.address().port;
    const probe = await openClient('udp4', '127.0.0.1');
    const freePort = probe.address().port;
    await closeQuietly(probe);
    const server = new StunServer({ host: '127.0.0.1', ports: [freePort, takenPort] });

    await expect(server.start()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(server.addresses()).toEqual([]);
    // The first port was bound before the failure; binding it again proves it was released.
    const rebound = await openClient('udp4', '127.0.0.1', freePort);
    expect(rebound.address().port).toBe(freePort);
  });

  it('stops cleanly, is idempotent, and can start again', async () => {
    const server = new StunServer({ host: '127.0.0.1', ports: [0] });
    expect(server.addresses()).toEqual([]);
    await server.start();
    await expect(server.start()).rejects.toThrow(/already started/);
    expect(server.addresses()).toHaveLength(1);
    await server.stop();
    await server.stop();
    expect(server.addresses()).toEqual([]);

    await server.start();
    cleanups.push(() => server.stop());
    const client = await openClient('udp4', '127.0.0.1');
    const { transactionId, reply } = await request(client, server.addresses()[0]!);
    expect(reply.transactionId).toBe(transactionId);
  });

  it('rejects an empty or invalid port list', () => {
    expect(() => new StunServer({ host: '127.0.0.1', ports: [] })).toThrow(RangeError);
    expect(() => new StunServer({ host: '127.0.0.1', ports: [65536] })).toThrow(RangeError);
    expect(() => new StunServer({ host: '127.0.0.1', ports: [1.5] })).toThrow(RangeError);
  });
});
