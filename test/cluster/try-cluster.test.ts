import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { expectTransport } from './cluster-pods.js';
import { TEST_SECRET } from '../support/in-process-relay.js';
import { RelayTestClient } from '../support/relay-test-client.js';

const SCRIPT = fileURLToPath(new URL('../../scripts/try-cluster.mjs', import.meta.url));

describe('scripts/try-cluster.mjs', () => {
  it('starts redis, three relays and a front; peers behind the one URL reach each other; Ctrl-C stops all', async () => {
    const child = spawn(process.execPath, [SCRIPT], {
      env: { ...process.env, TRY_PORT: '0', NB_AUTH_SECRET: TEST_SECRET, NB_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`launcher not up:\n${output}`)), 40_000);
        const poll = setInterval(() => {
          const match = /relay URL\s+(rel:\/\/\S+)/.exec(output);
          if (match) {
            clearTimeout(timer);
            clearInterval(poll);
            resolve(match[1]!);
          }
        }, 50);
      });
      // Round robin: three connections land on three different relays.
      const peers = await Promise.all(
        ['try-a', 'try-b', 'try-c'].map((identifier) =>
          RelayTestClient.connect(url, { identifier, secret: TEST_SECRET }),
        ),
      );
      const [a, b, c] = peers as [RelayTestClient, RelayTestClient, RelayTestClient];
      expect(a.instanceUrl).toBe(url);
      for (const [from, to] of [
        [a, b],
        [b, c],
        [c, a],
      ] as const) {
        from.subscribe([to.peerId]);
        await from.next(); // online
        from.sendTransport(to.peerId, Buffer.from(`hi from ${from.peerKey.length}`));
        await expectTransport(to, from, `hi from ${from.peerKey.length}`);
      }
      for (const peer of peers) peer.terminate();
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  }, 90_000);
});
