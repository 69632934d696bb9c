import { hostname } from 'node:os';
import { ConfigError, parseBoolean, parseDurationMs, parsePositiveInteger } from '../config/parse-values.js';
import { detectInCluster, SERVICE_ACCOUNT_DIR, serviceAccountNamespace } from './in-cluster.js';
import { DEFAULT_REBALANCE_OPTIONS, type RebalanceOptions } from './rebalance-policy.js';
import { DEFAULT_REBALANCER_TIMING, type RebalancerTiming } from './rebalancer.js';

/**
 * Environment variables of the Kubernetes integration (the chart sets them).
 * Kept here until they move into config/settings.ts with --flags.
 */
export const KUBERNETES_ENV = {
  enabled: 'NB_K8S_ENABLED',
  serviceAccountDir: 'NB_K8S_SERVICE_ACCOUNT_DIR',
  namespace: 'NB_POD_NAMESPACE',
  podName: 'NB_POD_NAME',
  headlessService: 'NB_K8S_HEADLESS_SERVICE',
  meshPortName: 'NB_K8S_MESH_PORT_NAME',
  leaseName: 'NB_K8S_LEASE_NAME',
  podSelector: 'NB_K8S_POD_SELECTOR',
  rebalanceEnabled: 'NB_REBALANCE_ENABLED',
  rebalanceInterval: 'NB_REBALANCE_INTERVAL',
  rebalanceCooldown: 'NB_REBALANCE_COOLDOWN',
  rebalanceWindow: 'NB_REBALANCE_WINDOW',
  rebalanceTolerance: 'NB_REBALANCE_TOLERANCE',
  rebalanceMinExcess: 'NB_REBALANCE_MIN_EXCESS',
  rebalanceMaxFraction: 'NB_REBALANCE_MAX_FRACTION',
  rebalanceMaxPerRound: 'NB_REBALANCE_MAX_PER_ROUND',
} as const;

/** The mesh refuses shed requests with a longer window (MAX_SHED_WINDOW_MS in cluster/mesh-frame.ts). */
const MAX_REBALANCE_WINDOW_MS = 60 * 60_000;

export interface KubernetesSettings {
  /** Where the service-account token, CA and namespace are mounted. */
  serviceAccountDir: string;
  namespace: string;
  podName: string;
  headlessService: string;
  meshPortName: string;
  leaseName: string;
  podLabelSelector?: string;
  rebalance: { enabled: boolean; policy: RebalanceOptions; timing: RebalancerTiming };
}

function fraction(setting: string, value: string, max: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > max) {
    throw new ConfigError(`${setting}: expected a number above 0 and at most ${max}, got "${value}"`);
  }
  return n;
}

/**
 * Reads the NB_K8S_* / NB_REBALANCE_* settings. Returns undefined when the
 * integration is off: NB_K8S_ENABLED=false, or "auto" (the default) outside a cluster.
 * Throws ConfigError naming the setting when a value is unusable.
 */
export function kubernetesSettingsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  defaultServiceAccountDir = SERVICE_ACCOUNT_DIR,
): KubernetesSettings | undefined {
  const E = KUBERNETES_ENV;
  const serviceAccountDir = env[E.serviceAccountDir]?.trim() || defaultServiceAccountDir;
  const mode = (env[E.enabled] ?? 'auto').trim().toLowerCase();
  const enabled = mode === 'auto' ? detectInCluster(env, serviceAccountDir) : parseBoolean(E.enabled, mode);
  if (!enabled) return undefined;
  if (mode !== 'auto' && !detectInCluster(env, serviceAccountDir)) {
    throw new ConfigError(
      `${E.enabled}: true, but no in-cluster API access (KUBERNETES_SERVICE_HOST or the service-account token is missing)`,
    );
  }
  const headlessService = env[E.headlessService]?.trim();
  if (!headlessService)
    throw new ConfigError(`${E.headlessService}: required when the Kubernetes integration is on`);
  const namespace = env[E.namespace]?.trim() || serviceAccountNamespace(serviceAccountDir);
  if (!namespace) throw new ConfigError(`${E.namespace}: required (downward API metadata.namespace)`);
  const podName = env[E.podName]?.trim() || hostname();
  const get = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value;
  };
  const duration = (name: string, fallback: number): number => {
    const value = get(name);
    return value === undefined ? fallback : parseDurationMs(name, value);
  };
  const integer = (name: string, fallback: number): number => {
    const value = get(name);
    return value === undefined ? fallback : parsePositiveInteger(name, value);
  };
  const tolerance = get(E.rebalanceTolerance);
  const maxFraction = get(E.rebalanceMaxFraction);
  const selector = get(E.podSelector);
  const shedWindowMs = duration(E.rebalanceWindow, DEFAULT_REBALANCER_TIMING.shedWindowMs);
  if (shedWindowMs > MAX_REBALANCE_WINDOW_MS) {
    throw new ConfigError(`${E.rebalanceWindow}: at most 1h, got "${get(E.rebalanceWindow)}"`);
  }
  return {
    serviceAccountDir,
    namespace,
    podName,
    headlessService,
    meshPortName: get(E.meshPortName) ?? 'mesh',
    leaseName: get(E.leaseName) ?? `${headlessService}-leader`,
    ...(selector ? { podLabelSelector: selector.trim() } : {}),
    rebalance: {
      enabled: parseBoolean(E.rebalanceEnabled, env[E.rebalanceEnabled] ?? 'true'),
      policy: {
        tolerance:
          tolerance === undefined
            ? DEFAULT_REBALANCE_OPTIONS.tolerance
            : fraction(E.rebalanceTolerance, tolerance, 10),
        minExcess: integer(E.rebalanceMinExcess, DEFAULT_REBALANCE_OPTIONS.minExcess),
        maxShedFraction:
          maxFraction === undefined
            ? DEFAULT_REBALANCE_OPTIONS.maxShedFraction
            : fraction(E.rebalanceMaxFraction, maxFraction, 1),
        maxShedPerRound: integer(E.rebalanceMaxPerRound, DEFAULT_REBALANCE_OPTIONS.maxShedPerRound),
      },
      timing: {
        intervalMs: duration(E.rebalanceInterval, DEFAULT_REBALANCER_TIMING.intervalMs),
        cooldownMs: duration(E.rebalanceCooldown, DEFAULT_REBALANCER_TIMING.cooldownMs),
        shedWindowMs,
      },
    },
  };
}
