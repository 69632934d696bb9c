import { readFileSync } from 'node:fs';
import { ConfigError, parseCount } from './parse-values.js';
import { SETTINGS, type SettingName } from './settings.js';

/** The limits SIGHUP can change: per-IP rates and caps, the per-session subscription cap. */
export interface LiveLimits {
  readonly connectRate: number;
  readonly connectBurst: number;
  readonly handshakeRate: number;
  readonly handshakeBurst: number;
  readonly maxConnectionsPerIp: number;
  readonly maxSubscriptionsPerPeer: number;
}

const LIVE: readonly (keyof LiveLimits & SettingName)[] = [
  'connectRate',
  'connectBurst',
  'handshakeRate',
  'handshakeBurst',
  'maxConnectionsPerIp',
  'maxSubscriptionsPerPeer',
];

/** `NB_X=value` lines; blank lines and # comments ignored. */
function readLimitsFile(path: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`NB_LIMITS_FILE: cannot read ${path}: ${(err as Error).message}`);
  }
  const entries = new Map<string, string>();
  for (const [index, line] of text.split('\n').entries()) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const match = /^(NB_[A-Z0-9_]+)\s*=\s*(.*)$/.exec(trimmed);
    if (!match?.[1] || match[2] === undefined)
      throw new ConfigError(`NB_LIMITS_FILE: line ${index + 1}: expected NB_NAME=value`);
    if (!LIVE.some((name) => SETTINGS[name].env === match[1]))
      throw new ConfigError(`NB_LIMITS_FILE: line ${index + 1}: ${match[1]} cannot be set here`);
    entries.set(match[1], match[2]);
  }
  return entries;
}

/**
 * The live limits: the limits file (if any) over `value` (flags, env, defaults).
 * Throws ConfigError naming the setting; on SIGHUP the caller keeps the old limits.
 */
export function loadLiveLimits(
  value: (name: SettingName) => string | undefined,
  limitsFile: string | undefined,
): LiveLimits {
  const file = limitsFile === undefined ? new Map<string, string>() : readLimitsFile(limitsFile);
  const read = (name: keyof LiveLimits & SettingName): number => {
    const env = SETTINGS[name].env;
    return parseCount(env, file.get(env) ?? value(name) ?? '');
  };
  const limits = Object.fromEntries(LIVE.map((name) => [name, read(name)])) as unknown as LiveLimits;
  if (limits.maxSubscriptionsPerPeer === 0)
    throw new ConfigError('NB_MAX_SUBSCRIPTIONS_PER_PEER: must be greater than zero');
  return limits;
}
