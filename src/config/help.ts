import { helpLines } from './command-line.js';
import { RELAY_COMMAND_SETTINGS } from './relay-config.js';
import { PROBE_SETTINGS, TOKEN_SETTINGS } from './settings-tools.js';

export const PROBE_USAGE = [
  'Usage: nb-cluster-relay probe --url rel://relay:443 [--url rel://pod-1:443 …] --secret S [flags]',
  '',
  ...helpLines(PROBE_SETTINGS, { probe: 'Probe' }),
].join('\n');

export const TOKEN_USAGE = [
  'Usage: nb-cluster-relay token --secret S [--ttl 24h]',
  '',
  ...helpLines(TOKEN_SETTINGS, { token: 'Token' }),
].join('\n');

/** `nb-cluster-relay --help`: every setting of every subcommand, from the tables. */
export function helpText(): string {
  return [
    'Usage: nb-cluster-relay [flags]',
    '       nb-cluster-relay token --secret S [--ttl 24h]',
    '       nb-cluster-relay probe --url rel://host:port [--url …] --secret S [flags]',
    '',
    ...helpLines(RELAY_COMMAND_SETTINGS, {
      relay: "Relay (same names as NetBird's relay)",
      cluster: 'Cluster mode',
      k8s: 'Kubernetes integration',
      tuning: 'Tuning',
    }),
    ...helpLines(PROBE_SETTINGS, { probe: 'nb-cluster-relay probe' }),
    ...helpLines(TOKEN_SETTINGS, { token: 'nb-cluster-relay token' }),
    '  --help                   show this text',
  ].join('\n');
}
