import { isIP } from 'node:net';
import type { HostPort } from '../net/host-port.js';

/** A configuration value that cannot be used; the message names the setting. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** "host:port", ":port" (all interfaces) or "[v6]:port". */
export function parseHostPort(setting: string, value: string): HostPort {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535)
    throw new ConfigError(`${setting}: expected host:port or :port, got "${value}"`);
  return { host: match[1] ?? match[2] ?? '', port };
}

export function parsePort(setting: string, value: string): number {
  const port = Number(value);
  if (!/^\d{1,5}$/.test(value.trim()) || port > 65535) {
    throw new ConfigError(`${setting}: expected a port number 0-65535, got "${value}"`);
  }
  return port;
}

export function parsePortList(setting: string, value: string): number[] {
  const ports = splitList(value).map((part) => parsePort(setting, part));
  if (ports.length === 0) throw new ConfigError(`${setting}: expected at least one port`);
  // As NetBird: each port 1-65535 and given once.
  if (ports.includes(0)) throw new ConfigError(`${setting}: port 0 is not allowed`);
  const dup = ports.find((p, i) => ports.indexOf(p) !== i);
  if (dup !== undefined) throw new ConfigError(`${setting}: port ${dup} is given twice`);
  return ports;
}

export function parseBoolean(setting: string, value: string): boolean {
  const normalized = value.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(normalized)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(normalized)) return false;
  throw new ConfigError(`${setting}: expected true or false, got "${value}"`);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go-style durations as NetBird users write them: "500ms", "25s", "1m30s", "24h". */
export function parseDurationMs(setting: string, value: string): number {
  const text = value.trim();
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) {
    throw new ConfigError(`${setting}: expected a duration such as 500ms, 25s, 5m or 24h, got "${value}"`);
  }
  return parts.reduce((sum, p) => sum + Number(p[1]) * (DURATION_UNITS[p[2] as string] as number), 0);
}

/** A non-negative integer: a count or a rate where 0 means "no limit". */
export function parseCount(setting: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
    throw new ConfigError(`${setting}: expected a non-negative integer, got "${value}"`);
  }
  return n;
}

/** A number above 0 and at most `max`. */
export function parseFraction(setting: string, value: string, max: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > max) {
    throw new ConfigError(`${setting}: expected a number above 0 and at most ${max}, got "${value}"`);
  }
  return n;
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** pino's levels, and logrus's "warning" and "panic" as NetBird users write them. */
export function parseLogLevel(setting: string, value: string): LogLevel {
  const level = value.trim().toLowerCase();
  if (level === 'warning') return 'warn';
  if (level === 'panic') return 'fatal';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new ConfigError(`${setting}: expected one of ${LOG_LEVELS.join(', ')}, got "${value}"`);
  }
  return level as LogLevel;
}

export function parsePositiveInteger(setting: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n <= 0 || !Number.isSafeInteger(n)) {
    throw new ConfigError(`${setting}: expected a positive integer, got "${value}"`);
  }
  return n;
}

/** IPs or CIDRs of reverse proxies whose X-Real-Ip headers are believed. */
export function parseCidrList(setting: string, value: string): string[] {
  return splitList(value).map((entry) => {
    const [address, prefix, extra] = entry.split('/');
    const family = isIP(address ?? '');
    const max = family === 6 ? 128 : 32;
    const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= max);
    if (family === 0 || !prefixOk || extra !== undefined) {
      throw new ConfigError(`${setting}: "${entry}" is not an IP address or CIDR`);
    }
    return entry;
  });
}

export function parseHostPortList(setting: string, value: string): HostPort[] {
  const list = splitList(value).map((entry) => parseHostPort(setting, entry));
  if (list.length === 0 || list.some((hp) => hp.host === '')) {
    throw new ConfigError(`${setting}: expected host:port[,host:port…], got "${value}"`);
  }
  return list;
}

export function splitList(value: string): string[] {
  return value
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
}
