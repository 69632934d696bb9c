import type { Logger } from 'pino';

/** Per-instance manager settings (NetBird made these per manager rather than global). */
export interface ManagerTuning {
  /** WireGuard MTU the relayed connections carry; clamped to [1280, 65535]. */
  mtu: number;
  /** How often foreign relay clients are checked for disuse. */
  cleanupIntervalMs: number;
  /** A foreign relay client with no connections for this long is closed. */
  unusedServerTimeMs: number;
}

export const MIN_MTU = 1280;
export const MAX_MTU = 65535;

/** NetBird's defaults (shared/relay/client/manager.go, client/iface DefaultMTU). */
export const DEFAULT_MANAGER_TUNING: ManagerTuning = {
  mtu: 1280,
  cleanupIntervalMs: 60_000,
  unusedServerTimeMs: 5_000,
};

/** Fills defaults and clamps the MTU, warning when the given value was out of range. */
export function resolveManagerTuning(given: Partial<ManagerTuning>, logger?: Logger): ManagerTuning {
  const tuning = { ...DEFAULT_MANAGER_TUNING, ...withoutUndefined(given) };
  const clamped = Math.min(MAX_MTU, Math.max(MIN_MTU, Math.round(tuning.mtu)));
  if (clamped !== tuning.mtu || !Number.isFinite(tuning.mtu)) {
    const mtu = Number.isFinite(tuning.mtu) ? clamped : DEFAULT_MANAGER_TUNING.mtu;
    logger?.warn(
      { requested: given.mtu, mtu },
      `relay MTU out of range [${MIN_MTU}, ${MAX_MTU}], using ${mtu}`,
    );
    tuning.mtu = mtu;
  }
  for (const key of ['cleanupIntervalMs', 'unusedServerTimeMs'] as const) {
    if (!(tuning[key] > 0)) throw new RangeError(`${key} must be a positive number of milliseconds`);
  }
  return tuning;
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
