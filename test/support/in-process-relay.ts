import { pino } from 'pino';
import { loadConfig } from '../../src/config/relay-config.js';
import { startRelay, type RunningRelay } from '../../src/main.js';

export const TEST_SECRET = 'test-secret-for-relay';

export interface InProcessRelay extends RunningRelay {
  readonly url: string;
}

/** A standalone relay in this process, on ephemeral loopback ports. */
export async function startInProcessRelay(env: Record<string, string> = {}): Promise<InProcessRelay> {
  const config = loadConfig([], {
    NB_LISTEN_ADDRESS: '127.0.0.1:0',
    NB_EXPOSED_ADDRESS: 'rel://relay.test:443',
    NB_AUTH_SECRET: TEST_SECRET,
    NB_METRICS_PORT: '0',
    NB_HEALTH_LISTEN_ADDRESS: '127.0.0.1:0',
    NB_DRAIN_WINDOW: '200ms',
    ...env,
  });
  const running = await startRelay(config, pino({ level: 'silent' }));
  return { ...running, url: `rel://127.0.0.1:${running.relayAddress.port}` };
}
