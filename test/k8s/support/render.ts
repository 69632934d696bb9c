import { readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { CHART_DIR, helm, parseYamlStream, REPO_ROOT, type KubeTools } from './kube-tools.js';
import type { KubeManifest } from './kube-rest.js';

export interface RenderOptions {
  valuesFiles?: string[];
  set?: string[];
  release?: string;
  namespace?: string;
}

/** `helm template` parsed into plain objects (Kubernetes' YAML code, nothing dropped), hooks included. */
export async function renderChart(tools: KubeTools, options: RenderOptions = {}): Promise<KubeManifest[]> {
  const args = [
    'template',
    options.release ?? 'relay',
    CHART_DIR,
    '--namespace',
    options.namespace ?? 'relay',
  ];
  for (const file of options.valuesFiles ?? [])
    args.push('-f', isAbsolute(file) ? file : join(CHART_DIR, 'ci', file));
  for (const set of options.set ?? []) args.push('--set', set);
  const { stdout } = await helm(tools, args);
  return (await parseYamlStream(tools, stdout)) as KubeManifest[];
}

export function find(objects: KubeManifest[], kind: string, nameSuffix = ''): KubeManifest[] {
  return objects.filter((o) => o.kind === kind && o.metadata.name.endsWith(nameSuffix));
}

export function one(objects: KubeManifest[], kind: string, name?: string): KubeManifest {
  const matches = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (matches.length !== 1) {
    throw new Error(
      `expected one ${kind}${name ? ` ${name}` : ''}, got ${matches.map((m) => m.metadata.name).join(', ') || 'none'}`,
    );
  }
  return matches[0] as KubeManifest;
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? walk(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** Every metric name the relay's source registers (name: 'relay_...'). */
export function sourceMetricNames(): Set<string> {
  const names = new Set<string>();
  for (const file of walk(join(REPO_ROOT, 'src'))) {
    for (const match of readFileSync(file, 'utf8').matchAll(/name:\s*'((?:relay|nb)_[a-z0-9_]+)'/g)) {
      names.add(match[1] as string);
    }
  }
  return names;
}

/** relay_* names a PromQL expression uses, with histogram/summary suffixes removed. */
export function relayMetricsIn(expr: string): string[] {
  return [...expr.matchAll(/\b(relay_[a-z0-9_]+)/g)].map((m) =>
    (m[1] as string).replace(/_(bucket|sum|count)$/, ''),
  );
}
