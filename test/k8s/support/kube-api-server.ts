import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { request } from 'node:https';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { kubeConfigWithTokenFile } from '../../../src/k8s/kube-config.js';
import { eventually } from '../../support/eventually.js';
import { freePort } from '../../support/free-port.js';
import type { KubeTools } from './kube-tools.js';

const execFileAsync = promisify(execFile);

/**
 * A real etcd + kube-apiserver pair on free loopback ports, for tests. TLS and
 * client certificates come from a throw-away CA made with openssl; the admin
 * client is in system:masters, everything else goes through RBAC
 * (--authorization-mode=Node,RBAC) with service-account tokens issued by the
 * server itself (TokenRequest), exactly as a pod would get them.
 */

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
});

async function openssl(dir: string, args: string[]): Promise<void> {
  await execFileAsync('openssl', args, { cwd: dir });
}

async function makeCertificates(dir: string, extraSans: string[], frontProxy: boolean): Promise<void> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(dir, [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '3',
    '-subj',
    '/CN=nb-test-ca',
  ]);
  const sign = async (name: string, subject: string, ext: string): Promise<void> => {
    writeFileSync(join(dir, `${name}.ext`), ext);
    await openssl(dir, ['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
    await openssl(dir, [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '3',
      '-extfile',
      `${name}.ext`,
    ]);
  };
  await sign(
    'server',
    '/CN=kube-apiserver',
    `subjectAltName=${['IP:127.0.0.1', 'DNS:localhost', ...extraSans].join(',')}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`,
  );
  await sign(
    'admin',
    '/O=system:masters/CN=nb-test-admin',
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n',
  );
  if (frontProxy) {
    // the aggregator's client certificate towards extension API servers (metrics-server)
    await sign(
      'front-proxy-client',
      `/CN=${FRONT_PROXY_CLIENT}`,
      'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n',
    );
  }
  await openssl(dir, ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa.key']);
  await openssl(dir, ['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']);
}

const FRONT_PROXY_CLIENT = 'front-proxy-client';

/** Polls until `check` holds (a throwing check counts as not yet); on timeout the log's tail says why. */
async function waitFor(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs: number,
  logFile?: string,
): Promise<void> {
  // A starting API server is asked every 200 ms, not at eventually's default pace: each check is a request.
  await eventually(() => check().catch(() => false), timeoutMs, what, 200).catch((err: Error) => {
    let tail = '';
    if (logFile) {
      try {
        tail = readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n');
      } catch {
        // no log
      }
    }
    throw new Error(`${err.message}${tail ? `\n--- ${logFile}:\n${tail}` : ''}`);
  });
}

export interface KubeApiServerOptions {
  /**
   * The address the `kubernetes` Service's endpoints name (pods reach the API
   * through it); the server still listens on loopback only. Unset: no endpoints.
   */
  advertiseAddress?: string;
  /** More subjectAltNames of the serving certificate, e.g. IP:10.96.0.1 (the Service's ClusterIP). */
  extraServerSans?: string[];
  /**
   * The aggregation layer's flags (requestheader CA and names, the proxy client certificate), so an
   * APIService such as metrics-server's can be served. The test CA doubles as the requestheader CA.
   */
  aggregationLayer?: boolean;
}

export class KubeApiServer {
  readonly dir: string;
  readonly port: number;
  readonly etcdPort: number;
  readonly #tools: KubeTools;
  readonly #etcdPeerPort: number;
  readonly #options: KubeApiServerOptions;
  #etcd: ChildProcess | undefined;
  #apiServer: ChildProcess | undefined;

  private constructor(
    tools: KubeTools,
    options: KubeApiServerOptions,
    dir: string,
    port: number,
    etcdPort: number,
    etcdPeerPort: number,
  ) {
    this.#tools = tools;
    this.#options = options;
    this.dir = dir;
    this.port = port;
    this.etcdPort = etcdPort;
    this.#etcdPeerPort = etcdPeerPort;
  }

  static async start(tools: KubeTools, options: KubeApiServerOptions = {}): Promise<KubeApiServer> {
    const dir = mkdtempSync(join(tmpdir(), 'nb-kube-'));
    await makeCertificates(dir, options.extraServerSans ?? [], options.aggregationLayer ?? false);
    const server = new KubeApiServer(
      tools,
      options,
      dir,
      await freePort(),
      await freePort(),
      await freePort(),
    );
    try {
      await server.#startEtcd();
      await server.#startApiServer();
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  get caFile(): string {
    return join(this.dir, 'ca.crt');
  }

  get pid(): number | undefined {
    return this.#apiServer?.pid;
  }

  /** A cluster-admin client (client certificate in system:masters). */
  adminKubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'test', server: this.url, caFile: this.caFile, skipTLSVerify: false }],
      users: [{ name: 'admin', certFile: join(this.dir, 'admin.crt'), keyFile: join(this.dir, 'admin.key') }],
      contexts: [{ name: 'test', cluster: 'test', user: 'admin' }],
      currentContext: 'test',
    });
    return kc;
  }

  /** A kubeconfig file for tools (helm --kube-* flags, debugging by hand). */
  writeAdminKubeconfigFile(): string {
    const file = join(this.dir, 'admin.kubeconfig');
    writeFileSync(file, this.adminKubeConfig().exportConfig());
    return file;
  }

  /**
   * Issues a token for a service account (TokenRequest, like a projected
   * volume) and returns a client that reads it from a file, as in a pod.
   */
  async serviceAccountKubeConfig(
    namespace: string,
    serviceAccount: string,
  ): Promise<{ kubeConfig: KubeConfig; tokenFile: string; rotate: (boundSecret?: string) => Promise<void> }> {
    const core = this.adminKubeConfig().makeApiClient(CoreV1Api);
    const tokenFile = join(this.dir, `token-${namespace}-${serviceAccount}-${Date.now()}`);
    /** A token bound to a Secret stops being valid when that Secret is deleted (a revocation for tests). */
    const issue = async (boundSecret?: string): Promise<void> => {
      let boundObjectRef: { kind: string; apiVersion: string; name: string; uid: string } | undefined;
      if (boundSecret) {
        const secret = await core.createNamespacedSecret({
          namespace,
          body: { metadata: { name: boundSecret }, stringData: { purpose: 'token binding' } },
        });
        boundObjectRef = {
          kind: 'Secret',
          apiVersion: 'v1',
          name: boundSecret,
          uid: secret.metadata?.uid ?? '',
        };
      }
      const response = await core.createNamespacedServiceAccountToken({
        name: serviceAccount,
        namespace,
        body: {
          spec: { audiences: [], expirationSeconds: 3600, ...(boundObjectRef ? { boundObjectRef } : {}) },
        },
      });
      const token = response.status?.token;
      if (!token) throw new Error('TokenRequest returned no token');
      // Atomic replace, like the kubelet's symlink swap.
      writeFileSync(`${tokenFile}.tmp`, token);
      await execFileAsync('mv', ['-f', `${tokenFile}.tmp`, tokenFile]);
    };
    await issue();
    return {
      kubeConfig: kubeConfigWithTokenFile({ server: this.url, caFile: this.caFile, tokenFile, namespace }),
      tokenFile,
      rotate: issue,
    };
  }

  /** kill -9 the API server (etcd keeps the data); connections are reset. */
  async killApiServer(): Promise<void> {
    await kill(this.#apiServer, 'SIGKILL');
    this.#apiServer = undefined;
  }

  /** Starts the API server again on the same port and etcd. */
  async startApiServer(): Promise<void> {
    await this.#startApiServer();
  }

  /** SIGSTOP: the API server stops answering but keeps its sockets open (a silent stall). */
  pause(): void {
    this.#apiServer?.kill('SIGSTOP');
  }

  resume(): void {
    this.#apiServer?.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    this.#apiServer?.kill('SIGCONT');
    await kill(this.#apiServer, 'SIGTERM');
    await kill(this.#etcd, 'SIGTERM');
    this.#apiServer = undefined;
    this.#etcd = undefined;
    rmSync(this.dir, { recursive: true, force: true });
  }

  async #startEtcd(): Promise<void> {
    const peer = `http://127.0.0.1:${this.#etcdPeerPort}`;
    const client = `http://127.0.0.1:${this.etcdPort}`;
    const log = join(this.dir, 'etcd.log');
    this.#etcd = launch(
      this.#tools.etcd,
      [
        '--name=test',
        `--data-dir=${join(this.dir, 'etcd')}`,
        `--listen-client-urls=${client}`,
        `--advertise-client-urls=${client}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=test=${peer}`,
        '--unsafe-no-fsync',
        '--log-level=warn',
      ],
      log,
    );
    await waitFor(() => httpOk(`${client}/health`), 'etcd /health', 30_000, log);
  }

  async #startApiServer(): Promise<void> {
    const d = (name: string): string => join(this.dir, name);
    const log = d('kube-apiserver.log');
    this.#apiServer = launch(
      this.#tools.kubeApiServer,
      [
        `--etcd-servers=http://127.0.0.1:${this.etcdPort}`,
        '--bind-address=127.0.0.1',
        `--advertise-address=${this.#options.advertiseAddress ?? '127.0.0.1'}`,
        `--secure-port=${this.port}`,
        `--tls-cert-file=${d('server.crt')}`,
        `--tls-private-key-file=${d('server.key')}`,
        `--client-ca-file=${d('ca.crt')}`,
        `--service-account-key-file=${d('sa.pub')}`,
        `--service-account-signing-key-file=${d('sa.key')}`,
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        '--api-audiences=https://kubernetes.default.svc.cluster.local',
        '--authorization-mode=RBAC',
        '--service-cluster-ip-range=10.96.0.0/16',
        '--allow-privileged=true',
        '--enable-priority-and-fairness=false',
        `--endpoint-reconciler-type=${this.#options.advertiseAddress ? 'lease' : 'none'}`,
        '--profiling=false',
        `--cert-dir=${d('cert-dir')}`,
        ...(this.#options.aggregationLayer
          ? [
              `--requestheader-client-ca-file=${d('ca.crt')}`,
              `--requestheader-allowed-names=${FRONT_PROXY_CLIENT}`,
              '--requestheader-username-headers=X-Remote-User',
              '--requestheader-group-headers=X-Remote-Group',
              '--requestheader-extra-headers-prefix=X-Remote-Extra-',
              `--proxy-client-cert-file=${d('front-proxy-client.crt')}`,
              `--proxy-client-key-file=${d('front-proxy-client.key')}`,
            ]
          : []),
        '--v=1',
      ],
      log,
    );
    await waitFor(() => this.#readyz(), 'kube-apiserver /readyz', 120_000, log);
  }

  #readyz(): Promise<boolean> {
    return new Promise((resolve) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: this.port,
          path: '/readyz',
          ca: readFileSync(this.caFile),
          cert: readFileSync(join(this.dir, 'admin.crt')),
          key: readFileSync(join(this.dir, 'admin.key')),
          timeout: 2_000,
        },
        (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        },
      );
      req.on('error', () => resolve(false));
      req.on('timeout', () => req.destroy());
      req.end();
    });
  }
}

function launch(binary: string, args: string[], logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a');
  const child = spawn(binary, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

async function kill(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

function httpOk(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpRequest(url, { timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}
