import type { Registry } from 'prom-client';

/** Current value of a metric (optionally one label set) as the /metrics endpoint would show it. */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`metric ${name} is not registered`);
  const { values } = await metric.get();
  const matching = values.filter((v) =>
    Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want),
  );
  return matching.reduce((sum, v) => sum + v.value, 0);
}
