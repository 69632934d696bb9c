import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeApiServer } from '../../k8s/support/kube-api-server.js';
import { REPO_ROOT } from '../../k8s/support/kube-tools.js';
import { freePorts } from '../../support/free-port.js';

export const NODE_BIN_DIR = process.env.KUBE_NODE_BIN_DIR ?? join(REPO_ROOT, '.cache/kube-node-bin');

/** The binaries of tools/kube/build.sh's node directory; fails (never skips) when one is missing. */
export function requireNodeBinaries(names: string[]): void {
  for (const name of names) {
    if (!existsSync(join(NODE_BIN_DIR, name))) throw new Error(`tools/kube/build.sh did not produce ${name}`);
  }
}

/**
 * The real kube-controller-manager and kube-scheduler (the apiserver's
 * version) against a test's API server, logging into its directory.
 */
export class Controllers {
  readonly #api: KubeApiServer;
  readonly #children: ChildProcess[] = [];

  private constructor(api: KubeApiServer) {
    this.#api = api;
  }

  static async start(api: KubeApiServer, controllerManagerArgs: string[] = []): Promise<Controllers> {
    requireNodeBinaries(['kube-scheduler', 'kube-controller-manager']);
    const controllers = new Controllers(api);
    const kubeconfig = api.writeAdminKubeconfigFile();
    const [kcmPort, schedPort] = await freePorts(2);
    const common = [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
    ];
    controllers.#launch('kube-controller-manager', [
      ...common,
      `--secure-port=${kcmPort}`,
      '--horizontal-pod-autoscaler-sync-period=1s',
      ...controllerManagerArgs,
      '--v=1',
    ]);
    controllers.#launch('kube-scheduler', [...common, `--secure-port=${schedPort}`, '--v=1']);
    return controllers;
  }

  #launch(name: string, args: string[]): void {
    const out = openSync(join(this.#api.dir, `${name}.log`), 'a');
    this.#children.push(spawn(join(NODE_BIN_DIR, name), args, { stdio: ['ignore', out, out] }));
    closeSync(out);
  }

  logTail(name: string, chars = 3000): string {
    try {
      return readFileSync(join(this.#api.dir, `${name}.log`), 'utf8').slice(-chars);
    } catch {
      return '';
    }
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.#children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGTERM');
          }),
      ),
    );
  }
}
