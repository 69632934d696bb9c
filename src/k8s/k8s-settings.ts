import { MAX_SHED_WINDOW_MS } from '../config/cluster-options.js';
import { ConfigError, parseFraction } from '../config/parse-values.js';
import { podNameOf, readRelaySettings, type RelaySettingValues } from '../config/relay-config.js';
import { detectInCluster, SERVICE_ACCOUNT_DIR, serviceAccountNamespace } from './in-cluster.js';
import type { RebalanceOptions } from './rebalance-policy.js';
import type { RebalancerTiming } from './rebalancer.js';

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

export interface K8sSettingsContext {
  /** This pod's name, as the relay's configuration resolved it. */
  readonly podName: string;
  /** The process environment: in-cluster detection reads KUBERNETES_SERVICE_HOST/PORT. */
  readonly env: NodeJS.ProcessEnv;
  /** Where the service account is mounted unless NB_K8S_SERVICE_ACCOUNT_DIR says otherwise. */
  readonly defaultServiceAccountDir?: string;
}

/**
 * The Kubernetes integration's settings (the K8S_SETTINGS rows). Returns undefined when the
 * integration is off: NB_K8S_ENABLED=false, or "auto" (the default) outside a cluster.
 * Throws ConfigError naming the setting when a value is unusable.
 */
export function k8sSettings(
  settings: RelaySettingValues,
  context: K8sSettingsContext,
): KubernetesSettings | undefined {
  const label = (name: Parameters<RelaySettingValues['label']>[0]): string => settings.label(name);
  const serviceAccountDir =
    settings.value('k8sServiceAccountDir')?.trim() ||
    (context.defaultServiceAccountDir ?? SERVICE_ACCOUNT_DIR);
  const mode = (settings.value('k8sEnabled') as string).trim().toLowerCase();
  const inCluster = detectInCluster(context.env, serviceAccountDir);
  const enabled = mode === 'auto' ? inCluster : settings.boolean('k8sEnabled');
  if (!enabled) return undefined;
  if (!inCluster) {
    throw new ConfigError(
      `${label('k8sEnabled')}: true, but no in-cluster API access (KUBERNETES_SERVICE_HOST or the service-account token is missing)`,
    );
  }
  const headlessService = settings.value('k8sHeadlessService')?.trim();
  if (!headlessService)
    throw new ConfigError(`${label('k8sHeadlessService')}: required when the Kubernetes integration is on`);
  const namespace = settings.value('podNamespace')?.trim() || serviceAccountNamespace(serviceAccountDir);
  if (!namespace)
    throw new ConfigError(`${label('podNamespace')}: required (downward API metadata.namespace)`);
  const fraction = (name: 'rebalanceTolerance' | 'rebalanceMaxFraction', max: number): number =>
    parseFraction(label(name), settings.required(name), max);
  const selector = settings.value('k8sPodSelector')?.trim();
  const shedWindowMs = settings.durationMs('rebalanceWindow');
  if (shedWindowMs > MAX_SHED_WINDOW_MS) {
    throw new ConfigError(
      `${label('rebalanceWindow')}: at most 1h, got "${settings.value('rebalanceWindow')}"`,
    );
  }
  return {
    serviceAccountDir,
    namespace,
    podName: context.podName,
    headlessService,
    meshPortName: settings.required('k8sMeshPortName'),
    leaseName: settings.value('k8sLeaseName') ?? `${headlessService}-leader`,
    ...(selector ? { podLabelSelector: selector } : {}),
    rebalance: {
      enabled: settings.boolean('rebalanceEnabled'),
      policy: {
        tolerance: fraction('rebalanceTolerance', 10),
        minExcess: settings.positiveInteger('rebalanceMinExcess'),
        maxShedFraction: fraction('rebalanceMaxFraction', 1),
        maxShedPerRound: settings.positiveInteger('rebalanceMaxPerRound'),
      },
      timing: {
        intervalMs: settings.durationMs('rebalanceInterval'),
        cooldownMs: settings.durationMs('rebalanceCooldown'),
        shedWindowMs,
      },
    },
  };
}

/** The same from NB_* variables alone (tests, and callers without flags). */
export function k8sSettingsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  defaultServiceAccountDir = SERVICE_ACCOUNT_DIR,
): KubernetesSettings | undefined {
  const settings = readRelaySettings([], env);
  return k8sSettings(settings, { podName: podNameOf(settings), env, defaultServiceAccountDir });
}
