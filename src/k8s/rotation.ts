import type { Sibling } from './sibling-discovery.js';

/** Peers one relay instance holds, and the pod it runs in. */
export interface InstanceLoad {
  readonly instance: string;
  readonly podName: string;
  readonly peers: number;
}

/**
 * Peers per instance for the rebalancer, leaving out instances whose pod the Service does not
 * send new peers to (draining, not ready): counting them would only pull the mean down, and
 * shedding towards them is impossible. Pods the sibling list does not name are kept.
 */
export function loadInRotation(
  instances: readonly InstanceLoad[],
  siblings: readonly Sibling[],
): Map<string, number> {
  const outOfRotation = new Set(
    siblings.filter((sibling) => !sibling.ready).map((sibling) => sibling.podName),
  );
  return new Map(
    instances.filter((i) => !outOfRotation.has(i.podName)).map((i) => [i.instance, i.peers] as const),
  );
}
