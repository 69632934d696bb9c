import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/parse-values.js';
import { parseProbeArgs } from '../../src/probe/probe-command.js';
import { freePort } from '../support/free-port.js';
import { startInProcessRelay, TEST_SECRET } from '../support/in-process-relay.js';
import { eventually } from '../support/eventually.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('probe command flags', () => {
  it('takes repeated and comma-separated URLs, durations and the secret from NB_AUTH_SECRET', () => {
    const settings = parseProbeArgs(
      ['--url', 'rel://a:1,rels://b:2', '--url=rel://c:3', '--interval', '250ms', '--metrics-port', '0'],
      { NB_AUTH_SECRET: 'from-env' },
    );
    expect(settings).toEqual({
      urls: ['rel://a:1', 'rels://b:2', 'rel://c:3'],
      secret: 'from-env',
      intervalMs: 250,
      reconnectIntervalMs: 60_000,
      metricsPort: 0,
      logLevel: 'info',
    });
  });

  it('takes what a NetBird client takes: a host without port, a path, a query', () => {
    const urls = [
      'rels://relay.example',
      'rel://relay.example:80/eu/relay-1',
      'rels://r.example:443/a?pool=b',
    ];
    expect(parseProbeArgs(['--url', urls.join(','), '--secret', 's'], {}).urls).toEqual(urls);
  });

  it('uses the defaults: 1 s interval, metrics on 9091', () => {
    const settings = parseProbeArgs(['--url', 'rel://a:1', '--secret', 's'], {});
    expect(settings.intervalMs).toBe(1_000);
    expect(settings.metricsPort).toBe(9091);
  });

  it.each([
    [[], /--url/],
    [['--url', 'http://a:1', '--secret', 's'], /--url: relay URL "http:\/\/a:1": expected rel/],
    [['--url', 'rel://a:1'], /--secret/],
    [['--url', 'rel://a:1', '--secret', 's', '--interval', 'soon'], /--interval/],
    [['--url', 'rel://a:1', '--secret', 's', '--log-level', 'loud'], /--log-level/],
    [['--url', 'rel://a:1', '--secret', 's', '--bogus'], /bogus/],
  ])('refuses %j with a message naming the flag', (args, message) => {
    expect(() => parseProbeArgs(args, {})).toThrow(ConfigError);
    expect(() => parseProbeArgs(args, {})).toThrow(message);
  });
});

describe('probe command', () => {
  it('runs from one command, serves its metrics, and exits cleanly on SIGTERM', async () => {
    const relay = await startInProcessRelay();
    cleanups.push(() => relay.stop());
    const metricsPort = await freePort();
    const runner = fileURLToPath(new URL('./support/run-probe-command.ts', import.meta.url));
    const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));
    const child = spawn(
      tsx,
      [
        runner,
        '--url',
        relay.url,
        '--interval',
        '100ms',
        '--metrics-port',
        String(metricsPort),
        '--log-level',
        'warn',
      ],
      { env: { ...process.env, NB_AUTH_SECRET: TEST_SECRET }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = once(child, 'exit');
    cleanups.push(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let body = '';
    const scrape = async (): Promise<boolean> => {
      body = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
        .then((res) => res.text())
        .catch(() => '');
      return /^relay_probe_success 1$/m.test(body);
    };
    await eventually(scrape, 30_000, 'probe success on /metrics').catch((err: Error) => {
      throw new Error(`${err.message}; probe output:\n${output}`);
    });
    for (const name of [
      'relay_probe_rtt_seconds_bucket',
      'relay_probe_sent_total',
      'relay_probe_lost_total',
      'relay_probe_reconnects_total',
      'relay_probe_peer_reconnect_notice_seconds_bucket',
    ]) {
      expect(body).toContain(name);
    }
    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    expect(code, output).toBe(0);
  }, 40_000);

  it('--once exits 0 after one round trip, and non-zero when no relay answers', async () => {
    const relay = await startInProcessRelay();
    cleanups.push(() => relay.stop());
    const runner = fileURLToPath(new URL('./support/run-probe-command.ts', import.meta.url));
    const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));
    const run = async (url: string): Promise<{ code: number | null; output: string }> => {
      const child = spawn(tsx, [runner, '--url', url, '--once', '--timeout', '5s', '--log-level', 'silent'], {
        env: { ...process.env, NB_AUTH_SECRET: TEST_SECRET },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const [code] = (await once(child, 'exit')) as [number | null];
      return { code, output };
    };
    const ok = await run(relay.url);
    expect(ok.code, ok.output).toBe(0);
    expect(ok.output).toMatch(/round trip through the relay in [\d.]+ ms/);
    const nobody = await run(`rel://127.0.0.1:${await freePort()}`);
    expect(nobody.code).not.toBe(0);
  }, 60_000);
});
