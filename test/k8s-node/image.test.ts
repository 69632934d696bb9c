import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRANSPORT_HEADER_SIZE } from '../../src/protocol/constants.js';
import { freePorts } from '../support/free-port.js';
import { TEST_SECRET } from '../support/in-process-relay.js';
import { redisCommand } from '../support/redis-server.js';
import { RelayTestClient } from '../support/relay-test-client.js';
import { ensureImages, IMAGES_TIMEOUT_MS, OciContainer } from './support/oci-container.js';

/**
 * The images a pod would run, built by buildah from deploy/Dockerfile (with
 * local stand-ins for the base images, which cannot be pulled here) and run
 * under runc the way a kubelet starts a container: the image's own user and
 * entrypoint, a read-only root filesystem, a tmpfs for /tmp.
 */

const containers: OciContainer[] = [];

beforeAll(async () => {
  await ensureImages();
}, IMAGES_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all(containers.map((c) => c.remove()));
});

async function start(image: string, options: Parameters<typeof OciContainer.run>[1]): Promise<OciContainer> {
  const container = await OciContainer.run(image, options);
  containers.push(container);
  return container;
}

function statusField(pid: number, field: string): string {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${field}:`));
  return (line ?? '').split(/\s+/).slice(1).join(' ');
}

/** The relay's settings for a standalone run on loopback ports. */
function relayEnv(port: number, health: number, metrics: number): Record<string, string> {
  return {
    NB_LISTEN_ADDRESS: `127.0.0.1:${port}`,
    NB_EXPOSED_ADDRESS: `rel://127.0.0.1:${port}`,
    NB_AUTH_SECRET: TEST_SECRET,
    NB_METRICS_PORT: String(metrics),
    NB_HEALTH_LISTEN_ADDRESS: `127.0.0.1:${health}`,
  };
}

async function readyz(port: number): Promise<number> {
  return fetch(`http://127.0.0.1:${port}/readyz`).then(
    (r) => r.status,
    () => 0,
  );
}

describe('the relay image under runc', () => {
  it('runs non-root on a read-only root with no shell, serves peers, drains on SIGTERM and exits 0', async () => {
    const [port, health, metrics] = await freePorts(3);
    const relay = await start('relay', {
      env: relayEnv(port!, health!, metrics!),
    });
    await expect.poll(() => readyz(health!), { timeout: 20_000, interval: 100 }).toBe(200);

    const pid = await relay.pid();
    expect(statusField(pid, 'Uid')).toBe('65532 65532 65532 65532');
    expect(statusField(pid, 'Gid')).toBe('65532 65532 65532 65532');
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toEqual([
      '/nodejs/bin/node',
      '--initial-old-space-size=64',
      'dist/cli.js',
      '',
    ]);
    const write = await relay.exec(['/nodejs/bin/node', '-e', "require('fs').writeFileSync('/app/x', '')"]);
    expect(write.code).not.toBe(0);
    expect(write.output).toMatch(/EROFS/);
    const shell = await relay.exec(['/bin/sh', '-c', 'true']);
    expect(shell.code).not.toBe(0);

    const alice = await RelayTestClient.connect(`rel://127.0.0.1:${port}`, {
      identifier: 'img-a',
      secret: TEST_SECRET,
    });
    const bob = await RelayTestClient.connect(`rel://127.0.0.1:${port}`, {
      identifier: 'img-b',
      secret: TEST_SECRET,
    });
    expect(alice.instanceUrl).toBe(`rel://127.0.0.1:${port}`);
    alice.sendTransport(bob.peerId, Buffer.from('through the image'));
    const atBob = await bob.next();
    expect(atBob.subarray(2, 38)).toEqual(alice.peerId);
    expect(atBob.subarray(TRANSPORT_HEADER_SIZE).toString()).toBe('through the image');

    await relay.signal('TERM');
    await expect(alice.closed).resolves.toBeDefined();
    await expect(bob.closed).resolves.toBeDefined();
    expect(await relay.exited).toBe(0);
    expect(relay.output).toMatch(/"mode":"standalone"/);
  }, 60_000);
});

describe('the Redis and pause images under runc', () => {
  it('Redis from Debian serves as the registry of a clustered relay image', async () => {
    const [redisPort, port, health, metrics, mesh] = await freePorts(5);
    const redis = await start('redis', {
      args: ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    });
    await expect
      .poll(() => redisCommand(redisPort!, 'PING').catch(() => ''), { timeout: 10_000 })
      .toBe('+PONG\r\n');
    expect(statusField(await redis.pid(), 'Uid')).toBe('65532 65532 65532 65532');

    const relay = await start('relay', {
      env: {
        ...relayEnv(port!, health!, metrics!),
        NB_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
        NB_CLUSTER_SECRET: 'image-test-cluster-secret',
        NB_MESH_LISTEN_ADDRESS: `127.0.0.1:${mesh}`,
        NB_MESH_ADVERTISE_ADDRESS: `127.0.0.1:${mesh}`,
        NB_POD_NAME: 'image-pod-0',
      },
    });
    await expect.poll(() => readyz(health!), { timeout: 20_000, interval: 100 }).toBe(200);
    const peer = await RelayTestClient.connect(`rel://127.0.0.1:${port}`, {
      identifier: 'img-c',
      secret: TEST_SECRET,
    });
    // the registration lands in the Redis container
    await expect
      .poll(async () => Number((await redisCommand(redisPort!, 'DBSIZE')).slice(1)), { timeout: 5_000 })
      .toBeGreaterThan(0);
    expect(relay.output).toMatch(/"mode":"cluster"/);
    peer.close();
    await relay.signal('TERM');
    expect(await relay.exited).toBe(0);
    await redis.signal('TERM');
    expect(await redis.exited).toBe(0);
  }, 60_000);

  it('pause holds a sandbox as an unprivileged static binary and exits 0 on SIGTERM', async () => {
    const pause = await start('pause', {});
    await expect.poll(async () => pause.pid().catch(() => 0), { timeout: 5_000 }).toBeGreaterThan(0);
    const pid = await pause.pid();
    expect(statusField(pid, 'Uid')).toBe('65535 65535 65535 65535');
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toBe('/pause\0');
    await pause.signal('TERM');
    expect(await pause.exited).toBe(0);
  });
});
