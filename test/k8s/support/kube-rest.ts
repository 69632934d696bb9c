import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import type { KubeApiServer } from './kube-api-server.js';

/**
 * Raw JSON requests to the API server as the admin. The typed client
 * (ObjectSerializer) silently drops fields it does not know, so manifests are
 * sent here byte for byte with fieldValidation=Strict: a misspelt field in a
 * template is an error, not a silent no-op.
 */

export interface KubeManifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [key: string]: unknown };
  [key: string]: unknown;
}

export interface RestResponse {
  status: number;
  body: unknown;
}

export class KubeRest {
  readonly #server: KubeApiServer;
  readonly #discovery = new Map<string, Map<string, { name: string; namespaced: boolean }>>();
  readonly #tls: { ca: Buffer; cert: Buffer; key: Buffer };

  constructor(server: KubeApiServer, impersonate?: string) {
    this.#server = server;
    this.#tls = {
      ca: readFileSync(server.caFile),
      cert: readFileSync(join(server.dir, 'admin.crt')),
      key: readFileSync(join(server.dir, 'admin.key')),
    };
    this.impersonate = impersonate;
  }

  readonly impersonate: string | undefined;

  /** The same client acting as another user (system:masters may impersonate). */
  as(user: string): KubeRest {
    return new KubeRest(this.#server, user);
  }

  request(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<RestResponse> {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: this.#server.port,
          method,
          path,
          ...this.#tls,
          headers: {
            Accept: 'application/json',
            ...(payload !== undefined
              ? { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(payload) }
              : {}),
            ...(this.impersonate ? { 'Impersonate-User': this.impersonate } : {}),
          },
          timeout: 30_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              // not JSON
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
        },
      );
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  async #resource(apiVersion: string, kind: string): Promise<{ name: string; namespaced: boolean }> {
    let kinds = this.#discovery.get(apiVersion);
    if (!kinds) {
      const path = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
      const res = await this.request('GET', path);
      if (res.status !== 200)
        throw new Error(`discovery of ${apiVersion} failed: ${res.status} ${JSON.stringify(res.body)}`);
      kinds = new Map();
      for (const r of (res.body as { resources: Array<{ name: string; kind: string; namespaced: boolean }> })
        .resources) {
        if (!r.name.includes('/')) kinds.set(r.kind, { name: r.name, namespaced: r.namespaced });
      }
      this.#discovery.set(apiVersion, kinds);
    }
    const resource = kinds.get(kind);
    if (!resource) throw new Error(`the API server does not serve ${kind} in ${apiVersion}`);
    return resource;
  }

  /** Forgets discovery (after installing CRDs). */
  resetDiscovery(): void {
    this.#discovery.clear();
  }

  async collectionPath(
    manifest: Pick<KubeManifest, 'apiVersion' | 'kind'>,
    namespace?: string,
  ): Promise<string> {
    const resource = await this.#resource(manifest.apiVersion, manifest.kind);
    const base = manifest.apiVersion.includes('/')
      ? `/apis/${manifest.apiVersion}`
      : `/api/${manifest.apiVersion}`;
    return resource.namespaced
      ? `${base}/namespaces/${namespace ?? 'default'}/${resource.name}`
      : `${base}/${resource.name}`;
  }

  /** POST with fieldValidation=Strict; dryRun=All unless `real`. */
  async create(manifest: KubeManifest, options: { real?: boolean } = {}): Promise<RestResponse> {
    const path = await this.collectionPath(manifest, manifest.metadata.namespace);
    const query = `fieldValidation=Strict&fieldManager=nb-test${options.real ? '' : '&dryRun=All'}`;
    return await this.request('POST', `${path}?${query}`, manifest);
  }

  async createOrFail(manifest: KubeManifest, options: { real?: boolean } = {}): Promise<unknown> {
    const res = await this.create(manifest, options);
    if (res.status !== 201 && res.status !== 200) {
      throw new Error(
        `${options.real ? 'create' : 'dry-run create'} of ${manifest.kind} ${manifest.metadata.name} failed: ${res.status} ${JSON.stringify(res.body)}`,
      );
    }
    return res.body;
  }

  async ensureNamespace(name: string): Promise<void> {
    const res = await this.request('POST', '/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name },
    });
    if (res.status !== 201 && res.status !== 409)
      throw new Error(`namespace ${name}: ${res.status} ${JSON.stringify(res.body)}`);
    // No kube-controller-manager here: create the "default" ServiceAccount its controller would.
    const sa = await this.request('POST', `/api/v1/namespaces/${name}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'default' },
    });
    if (sa.status !== 201 && sa.status !== 409)
      throw new Error(`default ServiceAccount in ${name}: ${sa.status}`);
  }
}
