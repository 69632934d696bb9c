// Every NB_EXPOSED_ADDRESS form against NetBird's relay binary (built from the
// v0.77.1 module by the interop harness): same input and TLS setting → the same
// instance URL, or both refuse. Then NetBird's relay client connects through a
// URL with a path, to ours and to NetBird's relay alike.
import { spawn, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/relay-config.js';
import { CLI_PATH } from '../support/relay-process.js';
import { createSelfSignedCert, type SelfSignedCert } from '../support/self-signed-cert.js';
import {
  ManagedProcess,
  NETBIRD_RELAY_BIN,
  buildGoBinaries,
  cleanEnv,
  freePorts,
  killAll,
  runDriver,
} from './harness.js';

type Outcome = { url: string } | { refused: string };

let cert: SelfSignedCert;

/** What NetBird's relay makes of an exposed address: the URL it logs, or its start-up error. */
async function netbirdOutcome(exposed: string, tls: boolean): Promise<Outcome> {
  const [listen, metrics, health] = await freePorts(3);
  const env = cleanEnv({
    NB_EXPOSED_ADDRESS: exposed,
    NB_AUTH_SECRET: 'table',
    NB_LISTEN_ADDRESS: `127.0.0.1:${listen}`,
    NB_METRICS_PORT: String(metrics),
    NB_HEALTH_LISTEN_ADDRESS: `127.0.0.1:${health}`,
    ...(tls ? { NB_TLS_CERT_FILE: cert.certFile, NB_TLS_KEY_FILE: cert.keyFile } : {}),
  });
  const child = spawn(NETBIRD_RELAY_BIN, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise<Outcome>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`NetBird relay neither started nor refused "${exposed}":\n${output}`));
    }, 20_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const started = /server will be available on: (\S+)/.exec(output);
      if (started) {
        clearTimeout(timer);
        child.kill('SIGKILL');
        resolve({ url: started[1] as string });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', () => {
      clearTimeout(timer);
      const line = /failed to execute command: (.*)/.exec(output);
      resolve({ refused: line ? (line[1] as string) : output.trim() });
    });
  });
}

function oursOutcome(exposed: string, tls: boolean): Outcome {
  try {
    const env = {
      NB_EXPOSED_ADDRESS: exposed,
      NB_AUTH_SECRET: 'table',
      ...(tls ? { NB_TLS_CERT_FILE: cert.certFile, NB_TLS_KEY_FILE: cert.keyFile } : {}),
    };
    return { url: loadConfig([], env).exposedAddress };
  } catch (err) {
    return { refused: (err as Error).message };
  }
}

/** Inputs both relays must treat alike; [address, TLS on]. */
const SAME: [string, boolean][] = [
  ['relay.example.com:443', true],
  ['relay.example.com:80', false],
  ['relay.example.com', true],
  ['relay.example.com', false],
  ['10.0.0.1:33080', false],
  ['[2001:db8::1]:443', true],
  ['relay.example.com:443/nb/relay', true],
  ['rel://relay.example.com:80', false],
  ['rels://relay.example.com:443', true],
  ['rels://relay.example.com:443', false], // TLS terminated in front
  ['rels://relay.example.com/relay', true],
  ['rels://relay.example.com:8443/a/b-c_d.e~f/', true],
  ['rels://relay.example.com:443/p%20q', true],
  ['rels://relay.example.com:443?region=eu', true],
  ['rels://relay.example.com:443/x?', false],
  ['REL://Relay.Example.COM:80', false],
  ['rel://relay.example.com:', false],
  ['rel://relay.example.com:99999', false], // NetBird does not range-check the port
  // refused by both
  ['rel://relay.example.com:80', true],
  ['rel://relay.example.com', true],
  ['http://relay.example.com:80', false],
  ['wss://relay.example.com:443', true],
  ['rel://rels://relay.example.com', false],
  ['://relay.example.com', false],
  ['rel://relay.example.com:http', false],
  ['relay.example.com:port', false],
  ['rel:relay.example.com', false],
  ['rel://relay example.com:80', false],
  ['rel://relay.example.com:80/%zz', false],
];

/** Deliberate difference: ours trims surrounding whitespace (a newline from a mounted Secret), NetBird refuses. */
const OURS_TRIMS: [string, boolean][] = [
  ['rel://relay.example.com:80\n', false],
  [' rels://relay.example.com:443', true],
];

/** Deliberate differences (README, Settings audit): NetBird starts, ours refuses. */
const OURS_STRICTER: [string, boolean, RegExp][] = [
  ['rel://', false, /no host/],
  ['rel:///relay', false, /no host/],
  ['rel://user:pw@relay.example.com:80', false, /credentials/],
  ['rel://relay.example.com:80/a b', false, /escaping/],
];

beforeAll(async () => {
  await buildGoBinaries(15 * 60_000);
  cert = createSelfSignedCert();
}, 16 * 60_000);

afterAll(() => {
  killAll();
  cert?.remove();
});

describe('NB_EXPOSED_ADDRESS forms, ours vs NetBird v0.77.1', () => {
  it.each(SAME)('%j with TLS %s: same instance URL, or both refuse', async (exposed, tls) => {
    const theirs = await netbirdOutcome(exposed, tls);
    const ours = oursOutcome(exposed, tls);
    if ('url' in theirs) expect(ours).toEqual(theirs);
    else {
      expect(ours).toHaveProperty('refused');
      expect((ours as { refused: string }).refused).toMatch(/^NB_EXPOSED_ADDRESS: /);
    }
  });

  it.each(OURS_STRICTER)('%j with TLS %s: NetBird starts, ours refuses', async (exposed, tls, why) => {
    expect(await netbirdOutcome(exposed, tls)).toHaveProperty('url');
    const ours = oursOutcome(exposed, tls);
    expect(ours).toHaveProperty('refused');
    expect((ours as { refused: string }).refused).toMatch(why);
  });

  it.each(OURS_TRIMS)('%j with TLS %s: NetBird refuses, ours trims and starts', async (exposed, tls) => {
    expect(await netbirdOutcome(exposed, tls)).toHaveProperty('refused');
    expect(oursOutcome(exposed, tls)).toEqual({ url: exposed.trim() });
  });

  it('refuses rel:// under TLS at start with one line naming the setting', () => {
    const run = spawnSync(process.execPath, [CLI_PATH], {
      env: cleanEnv({
        NB_EXPOSED_ADDRESS: 'rel://relay.example.com:80',
        NB_AUTH_SECRET: 'x',
        NB_TLS_CERT_FILE: cert.certFile,
        NB_TLS_KEY_FILE: cert.keyFile,
      }),
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.status).not.toBe(0);
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/NB_EXPOSED_ADDRESS: rel:\/\/ \(no TLS\) while TLS is on/);
  });
});

describe("NetBird's relay client through an exposed URL with a path", () => {
  // The client dials ws://host:port/relay whatever the path; each relay must
  // answer there and hand back the URL unchanged in the auth response.
  it.each([
    { relay: 'ours', cmd: process.execPath, args: [CLI_PATH], readyPath: '/readyz' },
    { relay: 'netbird', cmd: NETBIRD_RELAY_BIN, args: [], readyPath: '/health' },
  ])(
    '$relay: connects, and the auth response carries the URL as given',
    async ({ relay, cmd, args, readyPath }) => {
      const [listen, metrics, health] = await freePorts(3);
      const url = `rel://127.0.0.1:${listen}/nb/eu-1?via=front`;
      const name = `exposed-path-${relay}`;
      const server = new ManagedProcess({
        name,
        cmd,
        args,
        env: cleanEnv({
          NB_EXPOSED_ADDRESS: url,
          NB_AUTH_SECRET: 'path-secret',
          NB_LISTEN_ADDRESS: `127.0.0.1:${listen}`,
          NB_METRICS_PORT: String(metrics),
          NB_HEALTH_LISTEN_ADDRESS: `127.0.0.1:${health}`,
        }),
        readyUrl: `http://127.0.0.1:${health}${readyPath}`,
      });
      await server.start();
      try {
        const result = await runDriver(
          name,
          ['-scenario', 'connect', '-urls', url, '-instance-url', url, '-secret', 'path-secret'],
          60_000,
        );
        expect(result, result.reason).toMatchObject({ pass: true });
      } finally {
        await server.stop('SIGKILL', 5_000);
      }
    },
    90_000,
  );
});
