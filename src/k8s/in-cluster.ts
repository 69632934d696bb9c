import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where the kubelet mounts the pod's service-account token, CA and namespace. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * True inside a pod that can reach the API: the service environment variables
 * are set and a service-account token is mounted. (No client library loaded.)
 */
export function detectInCluster(
  env: NodeJS.ProcessEnv = process.env,
  serviceAccountDir = SERVICE_ACCOUNT_DIR,
): boolean {
  return (
    Boolean(env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT) &&
    existsSync(join(serviceAccountDir, 'token'))
  );
}

/** The pod's namespace as mounted with its service account, if any. */
export function serviceAccountNamespace(serviceAccountDir = SERVICE_ACCOUNT_DIR): string | undefined {
  try {
    return readFileSync(join(serviceAccountDir, 'namespace'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
