import { describe, expect, it } from 'vitest';
import { instanceUrl } from '../../src/config/exposed-address.js';
import { ConfigError } from '../../src/config/parse-values.js';

// The NetBird relay binary's own answers for these forms are compared in test/interop/exposed-address.test.ts;
// this is the pure function on its own, in the core suite.

const url = (address: string, tls: boolean): string => instanceUrl('NB_EXPOSED_ADDRESS', address, { tls });

function refusal(address: string, tls: boolean): string {
  try {
    url(address, tls);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error(`"${address}" was accepted`);
}

describe('instanceUrl (NB_EXPOSED_ADDRESS)', () => {
  it('gives a bare address the scheme of the listener: rels:// with TLS, rel:// without', () => {
    expect(url('relay.example.com:443', true)).toBe('rels://relay.example.com:443');
    expect(url('relay.example.com', false)).toBe('rel://relay.example.com');
    expect(url('[fd00::1]:33080', false)).toBe('rel://[fd00::1]:33080');
  });

  it('keeps a URL as given, scheme lower-cased, path and query included', () => {
    expect(url('RELS://relay.example.com:443/relay', true)).toBe('rels://relay.example.com:443/relay');
    expect(url('rels://relay.example.com', false)).toBe('rels://relay.example.com');
    expect(url('rel://10.0.0.1:33080/a/b?x=1', false)).toBe('rel://10.0.0.1:33080/a/b?x=1');
    expect(url('rels://relay.example.com/%2Frelay', true)).toBe('rels://relay.example.com/%2Frelay');
  });

  it('refuses rel:// while TLS is on, and any other scheme', () => {
    expect(refusal('rel://relay.example.com', true)).toContain('rel:// (no TLS) while TLS is on');
    expect(refusal('https://relay.example.com', true)).toContain('scheme "https" is not rel or rels');
    expect(refusal('rels://rels://relay.example.com', true)).toContain('more than one scheme');
  });

  it('refuses what no client can dial or NetBird would re-encode, naming the setting and the input', () => {
    const cases: [string, string][] = [
      ['rels://user:pw@relay.example.com', 'credentials'],
      ['rels://:443', 'no host'],
      ['rels://relay example.com', 'is not a host name or IP address'],
      ['rels://relä.example.com', 'is not a host name or IP address'],
      ['rels://relay.example.com:44x', '"44x" is not a port'],
      ['rels://relay.example.com/a b', 'the path has characters that need escaping'],
      ['rels://relay.example.com/%zz', 'the path has characters that need escaping'],
      ['rels://relay.example.com\n', 'control characters are not allowed'],
    ];
    for (const [address, why] of cases) {
      const message = refusal(address, true);
      expect(message).toContain(why);
      expect(message.startsWith('NB_EXPOSED_ADDRESS: ')).toBe(true);
      expect(message).toContain(`got "${address}"`);
    }
  });
});
