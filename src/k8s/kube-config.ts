import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig, type User } from '@kubernetes/client-node';
import { formatHostPort } from '../net/host-port.js';
import { SERVICE_ACCOUNT_DIR, serviceAccountNamespace } from './in-cluster.js';

export { detectInCluster, SERVICE_ACCOUNT_DIR, serviceAccountNamespace } from './in-cluster.js';

/** The client's authenticator interface (not exported by name from the package root). */
type Authenticator = Parameters<KubeConfig['addAuthenticator']>[0];
type RequestOptions = Parameters<Authenticator['applyAuthentication']>[1];

const PROVIDER_NAME = 'nb-rotating-token-file';
/**
 * Not "tokenFile": the client's built-in FileAuth claims any user whose
 * provider config has a tokenFile key, before custom authenticators are asked.
 */
const TOKEN_PATH_KEY = 'nbTokenPath';

/**
 * Bearer token from a file, re-read as soon as the file changes. Projected
 * service-account tokens are rotated by the kubelet (an atomic symlink swap);
 * the client's own tokenFile provider re-reads only once a minute, which can
 * send a stale token after the old one was revoked. A stat per request is cheap
 * at this client's request rate.
 */
export class RotatingTokenFileAuth implements Authenticator {
  private token = '';
  private version = '';

  isAuthProvider(user: User): boolean {
    return user.authProvider?.name === PROVIDER_NAME;
  }

  async applyAuthentication(user: User, opts: RequestOptions): Promise<void> {
    const file = String(user.authProvider?.config?.[TOKEN_PATH_KEY] ?? '');
    const token = this.read(file);
    const headers = (opts.headers ??= {}) as Record<string, string>;
    if (token) headers.Authorization = `Bearer ${token}`;
  }

  private read(file: string): string {
    const stat = statSync(file);
    const version = `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
    if (version !== this.version) {
      this.token = readFileSync(file, 'utf8').trim();
      this.version = version;
    }
    return this.token;
  }
}

export interface TokenFileConfig {
  /** https://host:port of the API server. */
  server: string;
  /** PEM bundle that signs the API server's certificate. */
  caFile: string;
  tokenFile: string;
  namespace?: string;
}

/** A KubeConfig that authenticates with a token file re-read on every change. */
export function kubeConfigWithTokenFile(config: TokenFileConfig): KubeConfig {
  const kc = new KubeConfig();
  kc.addAuthenticator(new RotatingTokenFileAuth());
  kc.loadFromOptions({
    clusters: [{ name: 'cluster', server: config.server, caFile: config.caFile, skipTLSVerify: false }],
    users: [
      {
        name: 'service-account',
        authProvider: { name: PROVIDER_NAME, config: { [TOKEN_PATH_KEY]: config.tokenFile } },
      },
    ],
    contexts: [
      {
        name: 'context',
        cluster: 'cluster',
        user: 'service-account',
        ...(config.namespace ? { namespace: config.namespace } : {}),
      },
    ],
    currentContext: 'context',
  });
  return kc;
}

/** In-cluster configuration: the service environment, the mounted CA and the (rotating) token. */
export function inClusterKubeConfig(
  env: NodeJS.ProcessEnv = process.env,
  serviceAccountDir = SERVICE_ACCOUNT_DIR,
): KubeConfig {
  const host = env.KUBERNETES_SERVICE_HOST ?? '';
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  const namespace = serviceAccountNamespace(serviceAccountDir);
  return kubeConfigWithTokenFile({
    server: `https://${formatHostPort(host, port)}`,
    caFile: join(serviceAccountDir, 'ca.crt'),
    tokenFile: join(serviceAccountDir, 'token'),
    ...(namespace ? { namespace } : {}),
  });
}
