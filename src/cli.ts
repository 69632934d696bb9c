#!/usr/bin/env node
import { pino } from 'pino';
import { generateToken } from './auth/hmac-token.js';
import { helpText, TOKEN_USAGE } from './config/help.js';
import { ConfigError } from './config/parse-values.js';
import { readRelaySettings, relayConfig } from './config/relay-config.js';
import { parseTokenArgs } from './config/settings-tools.js';
import { k8sSettings } from './k8s/k8s-settings.js';
import { createLogger } from './observability/logger.js';
import { startRelay } from './main.js';
import { runProbeCommand } from './probe/probe-command.js';

const PROGRAM = 'nb-cluster-relay';

function fail(message: string): never {
  process.stderr.write(`${PROGRAM}: ${message}\n`);
  process.exit(2);
}

/** `nb-cluster-relay token --secret S --ttl 24h`: prints a token peers can authenticate with. */
function tokenCommand(args: string[]): void {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(TOKEN_USAGE + '\n');
    return;
  }
  const { secret, ttlSeconds } = parseTokenArgs(args, process.env);
  process.stdout.write(generateToken(secret, ttlSeconds).toString('base64') + '\n');
}

async function runRelay(args: string[]): Promise<void> {
  const settings = readRelaySettings(args, process.env);
  const config = relayConfig(settings);
  const k8s = k8sSettings(settings, { podName: config.podName, env: process.env });
  const logger =
    config.logFile === 'console'
      ? createLogger(config.logLevel)
      : createLogger(config.logLevel, pino.destination({ dest: config.logFile, mkdir: true }));
  const running = await startRelay(config, logger, k8s ? { k8s } : {});
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (++signals > 1) {
      logger.warn({ signal }, 'second signal, exiting without drain');
      process.exit(1);
    }
    logger.info({ signal }, 'shutting down');
    running.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGHUP', () => {
    try {
      running.reloadLimits();
    } catch (err) {
      logger.error({ err }, 'limits not reloaded; keeping the old ones');
    }
  });
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

async function main(argv: string[]): Promise<void> {
  const [first, ...rest] = argv;
  if (first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(helpText() + '\n');
    return;
  }
  if (first === 'token') return tokenCommand(rest);
  if (first === 'probe') return runProbeCommand(rest);
  await runRelay(argv);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError) fail(err.message);
  const code = (err as { code?: string }).code;
  fail(code ? `${code}: ${(err as Error).message}` : err instanceof Error ? err.message : String(err));
});
