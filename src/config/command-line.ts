import type { HostPort } from '../net/host-port.js';
import {
  ConfigError,
  parseBoolean,
  parseCidrList,
  parseCount,
  parseDurationMs,
  parseHostPort,
  parseHostPortList,
  parseLogLevel,
  parsePort,
  parsePortList,
  parsePositiveInteger,
  type LogLevel,
} from './parse-values.js';
import type { SettingGroup, SettingSpec } from './settings.js';

/** The settings of one subcommand, by name. */
export type SettingTable = Readonly<Record<string, SettingSpec>>;
type Name<T> = keyof T & string;
export type RawSettings<T extends SettingTable> = Partial<Record<Name<T>, string>>;

/**
 * Flags win over NB_* variables, which win over defaults. Unknown flags are
 * errors. A repeatable list flag adds to the list each time it is given.
 */
export function readRawSettings<T extends SettingTable>(
  table: T,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): RawSettings<T> {
  const raw: RawSettings<T> = {};
  const byFlag = new Map<string, Name<T>>();
  for (const [name, spec] of Object.entries(table) as [Name<T>, SettingSpec][]) {
    for (const flag of [spec.flag, ...(spec.aliases ?? [])]) byFlag.set(flag, name);
    const fromEnv = spec.env === undefined ? undefined : env[spec.env];
    if (fromEnv !== undefined && fromEnv !== '') raw[name] = fromEnv;
  }
  const seen = new Set<Name<T>>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const long = /^--([a-z0-9-]+)(?:=(.*))?$/s.exec(arg);
    const short = long ? null : /^-([A-Za-z])(?:=?(.+))?$/s.exec(arg);
    const match = long ?? short;
    const name = match ? byFlag.get(match[1] as string) : undefined;
    if (!match || !name) throw new ConfigError(`${arg}: unknown flag (see --help)`);
    const spec: SettingSpec = table[name] as SettingSpec;
    let given: string;
    if (match[2] !== undefined) given = match[2];
    else if (spec.type === 'boolean') given = 'true';
    else {
      const value = argv[++i];
      if (value === undefined) throw new ConfigError(`${arg}: missing value`);
      given = value;
    }
    raw[name] = spec.repeatable && seen.has(name) ? `${raw[name] ?? ''},${given}` : given;
    seen.add(name);
  }
  return raw;
}

/**
 * The values of one subcommand's settings, each read by its type with an
 * error that names the setting: by its NB_* variable (the relay, which is
 * deployed with variables) or by its --flag (the tools, which are run with flags).
 */
export class SettingValues<T extends SettingTable> {
  constructor(
    private readonly table: T,
    readonly raw: RawSettings<T>,
    private readonly naming: 'env' | 'flag' = 'env',
  ) {}

  /** What the user gave, without the default. */
  given(name: Name<T>): string | undefined {
    return this.raw[name];
  }

  value(name: Name<T>): string | undefined {
    return this.raw[name] ?? this.spec(name).default;
  }

  label(name: Name<T>): string {
    const { env, flag } = this.spec(name);
    return this.naming === 'env' && env !== undefined ? env : `--${flag}`;
  }

  required(name: Name<T>): string {
    const value = this.value(name);
    if (value !== undefined && value.trim() !== '') return value;
    const { env, flag } = this.spec(name);
    const other = this.naming === 'env' ? `--${flag}` : env;
    throw new ConfigError(`${this.label(name)}: required${other === undefined ? '' : ` (or ${other})`}`);
  }

  boolean(name: Name<T>): boolean {
    return parseBoolean(this.label(name), this.required(name));
  }

  durationMs(name: Name<T>): number {
    return parseDurationMs(this.label(name), this.required(name));
  }

  port(name: Name<T>): number {
    return parsePort(this.label(name), this.required(name));
  }

  portList(name: Name<T>): number[] {
    return parsePortList(this.label(name), this.required(name));
  }

  hostPort(name: Name<T>): HostPort {
    return parseHostPort(this.label(name), this.required(name));
  }

  hostPortList(name: Name<T>): HostPort[] {
    return parseHostPortList(this.label(name), this.required(name));
  }

  positiveInteger(name: Name<T>): number {
    return parsePositiveInteger(this.label(name), this.required(name));
  }

  count(name: Name<T>): number {
    return parseCount(this.label(name), this.required(name));
  }

  cidrList(name: Name<T>): string[] {
    return parseCidrList(this.label(name), this.value(name) ?? '');
  }

  logLevel(name: Name<T>): LogLevel {
    return parseLogLevel(this.label(name), this.required(name));
  }

  private spec(name: Name<T>): SettingSpec {
    return this.table[name] as SettingSpec;
  }
}

/** `--help` lines for the groups of a table, in the order given. */
export function helpLines(table: SettingTable, groups: Partial<Record<SettingGroup, string>>): string[] {
  const lines: string[] = [];
  for (const [group, title] of Object.entries(groups)) {
    lines.push(`${title}:`);
    for (const spec of Object.values(table)) {
      if (spec.group !== group) continue;
      const def = spec.default !== undefined && spec.default !== '' ? ` (default ${spec.default})` : '';
      lines.push(`  --${spec.flag.padEnd(24)} ${(spec.env ?? '').padEnd(26)} ${spec.help}${def}`);
    }
    lines.push('');
  }
  return lines;
}
