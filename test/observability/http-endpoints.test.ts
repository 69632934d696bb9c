import type { Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createHealthServer, startEndpoint } from '../../src/observability/http-endpoints.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

async function readyz(ready: () => string | undefined, degraded?: () => string | undefined) {
  const server = createHealthServer(ready, degraded);
  servers.push(server);
  const { port } = await startEndpoint(server, { host: '127.0.0.1', port: 0 });
  const res = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: res.status, body: await res.text() };
}

describe('/readyz', () => {
  it('is 200 when ready, 503 with the reason when not', async () => {
    expect(await readyz(() => undefined)).toEqual({ status: 200, body: 'ready\n' });
    expect(await readyz(() => 'redis unreachable')).toEqual({
      status: 503,
      body: 'not ready: redis unreachable\n',
    });
  });

  it('names a degraded part but stays 200, so an API outage does not take every pod out of rotation', async () => {
    expect(
      await readyz(
        () => undefined,
        () => 'pods watch broken',
      ),
    ).toEqual({
      status: 200,
      body: 'ready; degraded: pods watch broken\n',
    });
    // Not ready wins over degraded.
    expect(
      await readyz(
        () => 'draining',
        () => 'pods watch broken',
      ),
    ).toEqual({
      status: 503,
      body: 'not ready: draining\n',
    });
  });
});
