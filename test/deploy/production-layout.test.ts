import { execFile } from 'node:child_process';
import { cpSync, existsSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/free-port.js';
import { RedisServer, stopAllRedis } from '../support/redis-server.js';
import { RelayProcess } from '../support/relay-process.js';
import { RelayTestClient } from '../support/relay-test-client.js';
import { TEST_SECRET } from '../support/in-process-relay.js';
import { REPO_ROOT } from '../k8s/support/kube-tools.js';
import { tempDir } from '../support/temp-dir.js';

/**
 * The container image (deploy/Dockerfile) runs dist/ with production
 * dependencies only. No Docker engine runs here, so this rebuilds the image's
 * /app the same way (npm ci --omit=dev from the lock file, dist/ and
 * package.json beside it) and runs it: a module that needs a dev dependency at
 * run time would break the image and shows up here instead.
 */

const execFileAsync = promisify(execFile);
let app: string;
const relays: RelayProcess[] = [];

beforeAll(async () => {
  app = tempDir('nb-image-app-');
  for (const file of ['package.json', 'package-lock.json']) cpSync(join(REPO_ROOT, file), join(app, file));
  await execFileAsync('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund'], {
    cwd: app,
    timeout: 240_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  cpSync(join(REPO_ROOT, 'dist'), join(app, 'dist'), { recursive: true });
}, 300_000);

afterAll(async () => {
  await Promise.all(relays.map((r) => r.stop()));
  await stopAllRedis();
});

function modules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? modules(join(dir, entry.name))
      : entry.name.endsWith('.js')
        ? [join(dir, entry.name)]
        : [],
  );
}

describe('the production layout of the image', () => {
  it('holds no dev dependency, and every module of dist/ loads from it', async () => {
    expect(existsSync(join(app, 'node_modules/ws'))).toBe(true);
    for (const dev of ['vitest', 'typescript', 'eslint', 'tsx', 'fast-check']) {
      expect(existsSync(join(app, 'node_modules', dev)), dev).toBe(false);
    }
    // cli.js runs the program when imported; it is started below instead.
    const all = modules(join(app, 'dist')).filter((file) => !file.endsWith(`${join('dist', 'cli.js')}`));
    expect(all.length).toBeGreaterThan(50);
    const script = `for (const m of ${JSON.stringify(all.map((f) => `./${relative(app, f)}`))}) await import(m);`;
    const { stderr } = await execFileAsync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: app,
      env: { PATH: process.env.PATH, NODE_ENV: 'production' },
    });
    expect(stderr).toBe('');
  });

  it('runs standalone and in cluster mode: ready, and a peer authenticates', async () => {
    const cliPath = join(app, 'dist/cli.js');
    const redis = await RedisServer.start();
    const meshPort = await freePort();
    const standalone = await RelayProcess.start({ cliPath, env: { NODE_ENV: 'production' } });
    relays.push(standalone);
    const clustered = await RelayProcess.start({
      cliPath,
      env: {
        NODE_ENV: 'production',
        NB_REDIS_URL: redis.url,
        NB_CLUSTER_SECRET: 'image-test-cluster-secret',
        NB_MESH_LISTEN_ADDRESS: `127.0.0.1:${meshPort}`,
        NB_MESH_ADVERTISE_ADDRESS: `127.0.0.1:${meshPort}`,
        NB_POD_NAME: 'image-test',
      },
    });
    relays.push(clustered);
    for (const relay of [standalone, clustered]) {
      const peer = await RelayTestClient.connect(relay.url, { identifier: 'image-peer', secret: TEST_SECRET });
      expect(peer.peerId.length).toBe(36);
      peer.close();
    }
    expect(clustered.output).toMatch(/"mode":"cluster"/);
  });
});
