import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/relay-config.js';

const BASE = { NB_EXPOSED_ADDRESS: 'rel://relay.test:443', NB_AUTH_SECRET: 'secret' };
const dir = mkdtempSync(join(tmpdir(), 'nb-limits-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('abuse limits settings', () => {
  it('have defaults for one address among many: 500 sessions, 200 upgrades at once, then 20/s', () => {
    const config = loadConfig([], BASE);
    expect(config.limits).toEqual({
      connectRate: 50,
      connectBurst: 500,
      handshakeRate: 20,
      handshakeBurst: 200,
      maxConnectionsPerIp: 500,
      maxSubscriptionsPerPeer: 8192,
    });
    expect(config.metricsHost).toBe('');
    expect(config.tlsReloadIntervalMs).toBe(10_000);
  });

  it('take the limits file over the environment, and re-read it', () => {
    const file = join(dir, 'limits.env');
    writeFileSync(file, '# comment\nNB_HANDSHAKE_RATE=5\n\nNB_MAX_CONNECTIONS_PER_IP = 0\n');
    const config = loadConfig([], { ...BASE, NB_LIMITS_FILE: file, NB_HANDSHAKE_RATE: '9' });
    expect(config.limits).toMatchObject({ handshakeRate: 5, maxConnectionsPerIp: 0 });
    writeFileSync(file, 'NB_HANDSHAKE_RATE=7\n');
    expect(config.reloadLimits()).toMatchObject({ handshakeRate: 7, maxConnectionsPerIp: 500 });
  });

  it('refuse bad values with one message naming the setting', () => {
    expect(() => loadConfig([], { ...BASE, NB_CONNECT_RATE: '-1' })).toThrow(/^NB_CONNECT_RATE: /);
    expect(() => loadConfig([], { ...BASE, NB_MAX_SUBSCRIPTIONS_PER_PEER: '0' })).toThrow(
      /^NB_MAX_SUBSCRIPTIONS_PER_PEER: /,
    );
    const file = join(dir, 'bad.env');
    writeFileSync(file, 'NB_AUTH_SECRET=stolen\n');
    expect(() => loadConfig([], { ...BASE, NB_LIMITS_FILE: file })).toThrow(
      /^NB_LIMITS_FILE: line 1: NB_AUTH_SECRET cannot be set here/,
    );
    expect(() => loadConfig([], { ...BASE, NB_LIMITS_FILE: join(dir, 'missing') })).toThrow(
      /^NB_LIMITS_FILE: /,
    );
  });
});
