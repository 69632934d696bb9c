// Try cluster mode on one machine: a Redis (unless NB_REDIS_URL is set), three
// relay processes and a round-robin TCP front on one port, the way a Kubernetes
// Service spreads connections over pods. Ctrl-C stops everything.
//
//   npm run build && node scripts/try-cluster.mjs
//   TRY_PORT=8080 NB_AUTH_SECRET=... NB_REDIS_URL=redis://... node scripts/try-cluster.mjs
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { get } from 'node:http';
import { createConnection, createServer } from 'node:net';
import { setTimeout } from 'node:timers';
import { URL, fileURLToPath } from 'node:url';

const RELAYS = 3;
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const host = process.env.TRY_HOST ?? '127.0.0.1';
const frontPort = Number(process.env.TRY_PORT ?? 8080);
const authSecret = process.env.NB_AUTH_SECRET ?? randomBytes(16).toString('hex');
const clusterSecret = process.env.NB_CLUSTER_SECRET ?? randomBytes(16).toString('hex');
const children = [];
let stopping = false;

if (!existsSync(cli)) {
  console.error('dist/cli.js is missing: run "npm run build" first.');
  process.exit(1);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts a child whose output lines are prefixed with its name. */
function start(name, command, args, env) {
  // Own process group: Ctrl-C reaches only this launcher, which stops the children in order.
  const child = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  children.push({ name, child });
  for (const stream of [child.stdout, child.stderr]) {
    let pending = '';
    stream.on('data', (chunk) => {
      const lines = (pending + chunk.toString()).split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (line.length > 0) console.log(`[${name}] ${line}`);
    });
  }
  child.once('exit', (code, signal) => {
    if (!stopping) {
      console.error(`[${name}] exited (${signal ?? code}); stopping everything`);
      void stop(1);
    }
  });
  return child;
}

async function waitFor(check, what, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function httpStatus(url) {
  return new Promise((resolve) => {
    get(url, (response) => {
      response.resume();
      resolve(response.statusCode);
    }).once('error', () => resolve(0));
  });
}

function redisAnswers(port) {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('error', () => resolve(false));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().startsWith('+PONG'));
    });
    socket.write('PING\r\n');
  });
}

async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  console.log('\nstopping…');
  // Relays first (they drain their peers), Redis last.
  const relays = children.filter(({ name }) => name.startsWith('relay'));
  for (const { child } of relays) child.kill('SIGTERM');
  await Promise.race([
    Promise.all(
      relays.map(
        ({ child }) =>
          new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve))),
      ),
    ),
    new Promise((resolve) => setTimeout(resolve, 8_000)),
  ]);
  for (const { child } of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  process.exit(code);
}

process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
process.on('exit', () => {
  for (const { child } of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

async function main() {
  let redisUrl = process.env.NB_REDIS_URL;
  if (!redisUrl) {
    const port = await freePort();
    start('redis', 'redis-server', [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
    ]);
    await waitFor(() => redisAnswers(port), 'redis-server');
    redisUrl = `redis://127.0.0.1:${port}`;
  }

  // The front: each new TCP connection goes to the next relay, like a Service without session affinity.
  const relays = [];
  let next = 0;
  const front = createServer((client) => {
    if (relays.length === 0) return client.destroy();
    const target = relays[next++ % relays.length];
    const upstream = createConnection({ host: '127.0.0.1', port: target.listen });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise((resolve, reject) => {
    front.once('error', reject);
    front.listen(frontPort, host, resolve);
  });
  const publicPort = front.address().port;

  const starting = [];
  for (let i = 1; i <= RELAYS; i++) {
    const [listen, mesh, health, metrics] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    start(`relay-${i}`, process.execPath, [cli], {
      NB_LISTEN_ADDRESS: `127.0.0.1:${listen}`,
      // Every pod announces the one public address: clients cannot tell the pods apart.
      NB_EXPOSED_ADDRESS: `rel://${host}:${publicPort}`,
      NB_AUTH_SECRET: authSecret,
      NB_REDIS_URL: redisUrl,
      NB_CLUSTER_SECRET: clusterSecret,
      NB_MESH_LISTEN_ADDRESS: `127.0.0.1:${mesh}`,
      NB_MESH_ADVERTISE_ADDRESS: `127.0.0.1:${mesh}`,
      NB_POD_NAME: `relay-${i}`,
      NB_HEALTH_LISTEN_ADDRESS: `127.0.0.1:${health}`,
      NB_METRICS_PORT: String(metrics),
      NB_LOG_LEVEL: process.env.NB_LOG_LEVEL ?? 'info',
    });
    starting.push({ listen, health, metrics });
  }
  for (const relay of starting) {
    await waitFor(
      async () => (await httpStatus(`http://127.0.0.1:${relay.health}/readyz`)) === 200,
      'relay readiness',
    );
  }
  relays.push(...starting);

  console.log(`
nb-cluster-relay: ${RELAYS} relays behind one address
  relay URL     rel://${host}:${publicPort}
  redis         ${redisUrl}
  auth secret   ${process.env.NB_AUTH_SECRET ? '(from NB_AUTH_SECRET)' : authSecret}
  get a token   node dist/cli.js token --secret "<auth secret>" --ttl 24h
  metrics       ${starting.map((relay) => `http://127.0.0.1:${relay.metrics}/metrics`).join('\n                ')}
Point NetBird clients (or the management server's relay setting) at the relay URL.
Ctrl-C stops everything.
`);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  void stop(1);
});
