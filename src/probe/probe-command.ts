import { readRawSettings, SettingValues } from '../config/command-line.js';
import { PROBE_USAGE } from '../config/help.js';
import { ConfigError, splitList, type LogLevel } from '../config/parse-values.js';
import { PROBE_SETTINGS } from '../config/settings-tools.js';
import { createMetricsServer, startEndpoint } from '../observability/http-endpoints.js';
import { createLogger } from '../observability/logger.js';
import { relayWebSocketUrl } from '../client/relay-url.js';
import { startProbe, type RunningProbe } from './prober.js';

export { PROBE_USAGE };

export interface ProbeCommandSettings {
  urls: string[];
  secret: string;
  intervalMs: number;
  reconnectIntervalMs: number;
  metricsPort: number;
  logLevel: LogLevel;
  /** Set with --once: exit after the first round trip, failing after this long. */
  onceTimeoutMs?: number;
}

/** Reads the probe's flags (and NB_AUTH_SECRET, NB_LOG_LEVEL); throws ConfigError naming the bad flag. */
export function parseProbeArgs(args: string[], env: NodeJS.ProcessEnv = process.env): ProbeCommandSettings {
  const settings = new SettingValues(PROBE_SETTINGS, readRawSettings(PROBE_SETTINGS, args, env), 'flag');
  const urls = splitList(settings.value('url') ?? '');
  if (urls.length === 0) throw new ConfigError(`--url: at least one relay URL is required\n${PROBE_USAGE}`);
  for (const url of urls) {
    // The client's own check, so the probe takes every address a NetBird client takes.
    try {
      relayWebSocketUrl(url);
    } catch (err) {
      throw new ConfigError(`--url: ${(err as Error).message}`);
    }
  }
  const secret = settings.required('secret');
  const intervalMs = settings.durationMs('interval');
  if (intervalMs <= 0) throw new ConfigError('--interval: must be longer than 0');
  return {
    urls,
    secret,
    intervalMs,
    reconnectIntervalMs: settings.durationMs('reconnectInterval'),
    metricsPort: settings.port('metricsPort'),
    logLevel: settings.logLevel('logLevel'),
    ...(settings.boolean('once') ? { onceTimeoutMs: settings.durationMs('timeout') } : {}),
  };
}

/**
 * `nb-cluster-relay probe …`: runs the end-to-end prober until SIGINT or
 * SIGTERM, serving its metrics on --metrics-port.
 */
export async function runProbeCommand(args: string[]): Promise<void> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(PROBE_USAGE + '\n');
    return;
  }
  const settings = parseProbeArgs(args);
  const logger = createLogger(settings.logLevel);
  const probe = await startProbe({
    urls: settings.urls,
    auth: { secret: settings.secret },
    intervalMs: settings.intervalMs,
    peerReconnectIntervalMs: settings.reconnectIntervalMs,
    logger,
  });
  if (settings.onceTimeoutMs !== undefined) return checkOnce(probe, settings.onceTimeoutMs);
  const server = createMetricsServer(probe.registry);
  const address = await startEndpoint(server, { host: '', port: settings.metricsPort });
  logger.info({ urls: settings.urls, metrics_port: address.port }, 'relay probe running');
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      logger.info({ signal }, 'relay probe stopping');
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  await probe.stop();
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** --once: succeeds on the first packet that made it through the relay and back. */
async function checkOnce(probe: RunningProbe, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const rttSeconds = await new Promise<number>((resolve, reject) => {
      probe.once('roundTrip', resolve);
      timer = setTimeout(
        () => reject(new Error(`probe: no round trip through the relay within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    process.stdout.write(`probe: round trip through the relay in ${(rttSeconds * 1000).toFixed(1)} ms\n`);
  } finally {
    clearTimeout(timer);
    await probe.stop();
  }
}
