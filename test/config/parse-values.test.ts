import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  parseBoolean,
  parseCidrList,
  parseCount,
  parseDurationMs,
  parseFraction,
  parseHostPort,
  parseHostPortList,
  parseLogLevel,
  parsePort,
  parsePortList,
  parsePositiveInteger,
} from '../../src/config/parse-values.js';

/** The error a parser throws for `value`: a ConfigError whose message starts with the setting's name. */
function refusal(parse: (setting: string, value: string) => unknown, value: string): string {
  try {
    parse('NB_SETTING', value);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    expect(message.startsWith('NB_SETTING: ')).toBe(true);
    return message;
  }
  throw new Error(`"${value}" was accepted`);
}

describe('configuration values', () => {
  it('durations as Go writes them, in milliseconds', () => {
    const cases: [string, number][] = [
      ['500ms', 500],
      ['25s', 25_000],
      ['1m30s', 90_000],
      ['24h', 86_400_000],
      ['1.5s', 1_500],
      [' 2m ', 120_000],
      ['0s', 0],
    ];
    for (const [text, ms] of cases) expect(parseDurationMs('NB_SETTING', text)).toBe(ms);
    for (const bad of ['', '25', 's', '5 m', '-1s', '1d', '1m junk', '1s1']) {
      expect(refusal(parseDurationMs, bad)).toContain('expected a duration');
    }
  });

  it('host:port, :port and [v6]:port; a bare IPv6 address or a port above 65535 is refused', () => {
    expect(parseHostPort('NB_SETTING', 'relay.example:443')).toEqual({ host: 'relay.example', port: 443 });
    expect(parseHostPort('NB_SETTING', ':33080')).toEqual({ host: '', port: 33080 });
    expect(parseHostPort('NB_SETTING', '[::1]:7946')).toEqual({ host: '::1', port: 7946 });
    for (const bad of ['::1:7946', 'host', 'host:', 'host:65536', 'host:123456', '[::1]']) {
      expect(refusal(parseHostPort, bad)).toContain(`got "${bad}"`);
    }
  });

  it('a host:port list needs a host in every entry', () => {
    expect(parseHostPortList('NB_SETTING', 'a:1, [::1]:2,')).toEqual([
      { host: 'a', port: 1 },
      { host: '::1', port: 2 },
    ]);
    expect(refusal(parseHostPortList, 'a:1,:2')).toContain('expected host:port[,host:port…]');
    expect(refusal(parseHostPortList, ' , ')).toContain('expected host:port[,host:port…]');
  });

  it('ports 0-65535; a port list as NetBird takes it: at least one, no 0, none twice', () => {
    expect(parsePort('NB_SETTING', '0')).toBe(0);
    expect(parsePort('NB_SETTING', '65535')).toBe(65535);
    for (const bad of ['65536', '-1', '1.5', '', 'http'])
      expect(refusal(parsePort, bad)).toContain('port number');
    expect(parsePortList('NB_SETTING', '3478, 3479')).toEqual([3478, 3479]);
    expect(refusal(parsePortList, '')).toBe('NB_SETTING: expected at least one port');
    expect(refusal(parsePortList, '3478,0')).toBe('NB_SETTING: port 0 is not allowed');
    expect(refusal(parsePortList, '3478,3478')).toBe('NB_SETTING: port 3478 is given twice');
  });

  it('booleans in the spellings operators use; empty is false', () => {
    for (const yes of ['1', 'true', 'TRUE', 'yes', 'on', ' On '])
      expect(parseBoolean('NB_SETTING', yes)).toBe(true);
    for (const no of ['0', 'false', 'no', 'off', '']) expect(parseBoolean('NB_SETTING', no)).toBe(false);
    expect(refusal(parseBoolean, 'maybe')).toContain('expected true or false');
  });

  it('counts from 0, positive integers from 1, fractions in (0, max]', () => {
    expect(parseCount('NB_SETTING', '0')).toBe(0);
    for (const bad of ['-1', '1.5', '', '9007199254740993'])
      expect(refusal(parseCount, bad)).toContain('non-negative');
    expect(parsePositiveInteger('NB_SETTING', '1')).toBe(1);
    for (const bad of ['0', '-3', '2.5'])
      expect(refusal(parsePositiveInteger, bad)).toContain('positive integer');
    expect(parseFraction('NB_SETTING', '0.25', 1)).toBe(0.25);
    expect(parseFraction('NB_SETTING', '1', 1)).toBe(1);
    const fraction = (setting: string, value: string): number => parseFraction(setting, value, 1);
    for (const bad of ['0', '1.01', '', 'half', 'Infinity'])
      expect(refusal(fraction, bad)).toContain('at most 1');
  });

  it("log levels: pino's, and logrus's warning and panic", () => {
    expect(parseLogLevel('NB_SETTING', 'WARNING')).toBe('warn');
    expect(parseLogLevel('NB_SETTING', 'panic')).toBe('fatal');
    expect(parseLogLevel('NB_SETTING', ' debug ')).toBe('debug');
    expect(refusal(parseLogLevel, 'verbose')).toContain('expected one of trace, debug, info');
  });

  it('trusted proxies: IPv4 and IPv6 addresses or CIDRs, prefix within the family', () => {
    expect(parseCidrList('NB_SETTING', '10.0.0.0/8, 192.0.2.7, fd00::/8')).toEqual([
      '10.0.0.0/8',
      '192.0.2.7',
      'fd00::/8',
    ]);
    expect(parseCidrList('NB_SETTING', '')).toEqual([]);
    for (const bad of ['10.0.0.0/33', 'fd00::/129', 'proxy.local', '10.0.0.0/8/1', '10.0.0.0/x']) {
      expect(refusal(parseCidrList, bad)).toBe(`NB_SETTING: "${bad}" is not an IP address or CIDR`);
    }
  });
});
