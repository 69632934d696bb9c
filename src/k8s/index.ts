// Importing this index loads @kubernetes/client-node. main.ts should import ./k8s-settings.js (cheap)
// and load ./kubernetes.js with a dynamic import only when the integration is on.
export {
  startKubernetes,
  type KubernetesHooks,
  type KubernetesIntegration,
  type KubernetesOptions,
} from './kubernetes.js';
export { k8sSettings, k8sSettingsFromEnv, type KubernetesSettings } from './k8s-settings.js';
export {
  detectInCluster,
  inClusterKubeConfig,
  kubeConfigWithTokenFile,
  RotatingTokenFileAuth,
} from './kube-config.js';
export {
  planRebalance,
  DEFAULT_REBALANCE_OPTIONS,
  type RebalanceOptions,
  type RebalancePlan,
  type ShedRequest,
} from './rebalance-policy.js';
export { loadInRotation, type InstanceLoad } from './rotation.js';
export { siblingsFromSlices, type Sibling } from './sibling-discovery.js';
