import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const KUBE_BIN_DIR = process.env.KUBE_BIN_DIR ?? join(REPO_ROOT, '.cache/kube-bin');
export const CHART_DIR = join(REPO_ROOT, 'charts/nb-cluster-relay');
/** Debian's prometheus package, unpacked by tools/kube/prometheus.sh. */
export const PROMETHEUS_DIR = process.env.PROMETHEUS_DIR ?? join(REPO_ROOT, '.cache/prometheus');

export interface KubeTools {
  kubeApiServer: string;
  etcd: string;
  helm: string;
  /** YAML stream -> JSON array with Kubernetes' own YAML code. */
  yaml2json: string;
  /** Directory of the prometheus-operator CRD manifests. */
  crdDir: string;
  /** Prometheus' rule checker and rule unit-test runner. */
  promtool: string;
  /** The Prometheus server (test/k8s-node scrapes the pods with it). */
  prometheus: string;
}

/** First uncached build of kube-apiserver can take a long time on a small, busy machine. */
export const KUBE_TOOLS_TIMEOUT_MS = 45 * 60_000;

let building: Promise<KubeTools> | undefined;

/**
 * Runs tools/kube/build.sh (idempotent, locked, skips what is cached) and
 * returns the binaries. Never skips: a missing toolchain fails the suite.
 */
export function ensureKubeTools(): Promise<KubeTools> {
  building ??= (async () => {
    const started = Date.now();
    try {
      await execFileAsync('bash', [join(REPO_ROOT, 'tools/kube/build.sh')], {
        cwd: REPO_ROOT,
        env: { ...process.env, KUBE_BIN_DIR, PROMETHEUS_DIR },
        maxBuffer: 64 * 1024 * 1024,
        timeout: KUBE_TOOLS_TIMEOUT_MS,
      });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`tools/kube/build.sh failed: ${e.message}\n${e.stderr ?? ''}`);
    }
    const tools: KubeTools = {
      kubeApiServer: join(KUBE_BIN_DIR, 'kube-apiserver'),
      etcd: join(KUBE_BIN_DIR, 'etcd'),
      helm: join(KUBE_BIN_DIR, 'helm'),
      yaml2json: join(KUBE_BIN_DIR, 'yaml2json'),
      crdDir: join(KUBE_BIN_DIR, 'crds'),
      promtool: join(PROMETHEUS_DIR, 'usr/bin/promtool'),
      prometheus: join(PROMETHEUS_DIR, 'usr/bin/prometheus'),
    };
    for (const path of Object.values(tools)) {
      if (!existsSync(path)) throw new Error(`tools/kube/build.sh did not produce ${path}`);
    }
    const seconds = Math.round((Date.now() - started) / 1000);
    if (seconds > 10) process.stderr.write(`[k8s tests] kube tools ready after ${seconds} s\n`);
    return tools;
  })();
  return building;
}

/** Runs helm with an isolated home (no repositories, no plugins, no cluster access). */
export async function helm(tools: KubeTools, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const home = join(KUBE_BIN_DIR, 'helm-home');
  try {
    return await execFileAsync(tools.helm, args, {
      cwd: REPO_ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: home,
        HELM_CACHE_HOME: join(home, 'cache'),
        HELM_CONFIG_HOME: join(home, 'config'),
        HELM_DATA_HOME: join(home, 'data'),
        KUBECONFIG: join(home, 'no-kubeconfig'),
      },
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`helm ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
}

/**
 * Parses a YAML stream into plain objects exactly as Kubernetes tools do
 * (client-node's loadYaml maps objects onto its models and drops unknown fields).
 */
export function parseYamlStream(tools: KubeTools, text: string): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const child = execFile(tools.yaml2json, [], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`yaml2json failed: ${stderr || err.message}`));
      else resolve(JSON.parse(stdout) as unknown[]);
    });
    child.stdin?.end(text);
  });
}
