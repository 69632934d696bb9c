import { parseArgs } from 'node:util';
import { ConfigError, parseDurationMs, parsePort } from '../config/parse-values.js';
import { createMetricsServer, startEndpoint } from '../observability/http-endpoints.js';
import { createLogger, LOG_LEVELS, type LogLevel } from '../observability/logger.js';
import { startProbe, type RunningProbe } from './prober.js';
import { relayWebSocketUrl } from '../client/relay-url.js';

export const PROBE_USAGE = `usage: nb-cluster-relay probe --url rel://relay:443 [--url rel://pod-1:443 …] --secret S
  --url URL              relay URL (rel:// or rels://, host, optional port and path); repeat or comma-separate to pin the two probe clients to different pods
  --secret S             auth secret (or NB_AUTH_SECRET)
  --interval 1s          time between probe packets
  --reconnect-interval 60s
                         how often one client reconnects to time the notice the other gets (0 = never)
  --metrics-port 9091    Prometheus metrics at :PORT/metrics
  --log-level info       trace, debug, info, warn, error, fatal, silent
  --once                 one round trip through the relay, then exit 0 (exit non-zero on failure; for helm test)
  --timeout 30s          with --once: how long to wait for that round trip`;

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

/** Reads the probe's flags (and NB_AUTH_SECRET); throws ConfigError naming the bad flag. */
export function parseProbeArgs(args: string[], env: NodeJS.ProcessEnv = process.env): ProbeCommandSettings {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: 'string', multiple: true },
        secret: { type: 'string' },
        interval: { type: 'string', default: '1s' },
        'reconnect-interval': { type: 'string', default: '60s' },
        'metrics-port': { type: 'string', default: '9091' },
        'log-level': { type: 'string', default: env.NB_LOG_LEVEL ?? 'info' },
        once: { type: 'boolean', default: false },
        timeout: { type: 'string', default: '30s' },
      },
    });
  } catch (err) {
    throw new ConfigError(`probe: ${(err as Error).message}\n${PROBE_USAGE}`);
  }
  const { values } = parsed;
  const urls = (values.url ?? [])
    .flatMap((entry) => entry.split(','))
    .map((url) => url.trim())
    .filter(Boolean);
  if (urls.length === 0) throw new ConfigError(`--url: at least one relay URL is required\n${PROBE_USAGE}`);
  for (const url of urls) {
    // The client's own check, so the probe takes every address a NetBird client takes.
    try {
      relayWebSocketUrl(url);
    } catch (err) {
      throw new ConfigError(`--url: ${(err as Error).message}`);
    }
  }
  const secret = values.secret ?? env.NB_AUTH_SECRET;
  if (!secret) throw new ConfigError('--secret (or NB_AUTH_SECRET): required');
  const intervalMs = parseDurationMs('--interval', values.interval);
  if (intervalMs <= 0) throw new ConfigError('--interval: must be longer than 0');
  const logLevel = values['log-level'];
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError(`--log-level: expected one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }
  return {
    urls,
    secret,
    intervalMs,
    reconnectIntervalMs: parseDurationMs('--reconnect-interval', values['reconnect-interval']),
    metricsPort: parsePort('--metrics-port', values['metrics-port']),
    logLevel: logLevel as LogLevel,
    ...(values.once ? { onceTimeoutMs: parseDurationMs('--timeout', values.timeout) } : {}),
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
  logger.info({ urls: settings.urls, metricsPort: address.port }, 'relay probe running');
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
