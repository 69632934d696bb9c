import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { eventually } from './eventually.js';
import { freePort } from './free-port.js';
import { TEST_SECRET } from './in-process-relay.js';

export const CLI_PATH = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface RelayProcessOptions {
  /** Extra NB_* variables (cluster settings, tuning). */
  env?: Record<string, string>;
  /** Exposed address; defaults to this process's own rel:// URL. */
  exposedAddress?: string;
  /** The CLI to run (default: this checkout's dist/cli.js). */
  cliPath?: string;
}

/** One relay process started from dist/cli.js on free loopback ports. */
export class RelayProcess {
  readonly url: string;
  readonly port: number;
  readonly healthPort: number;
  readonly metricsPort: number;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output = '';

  private constructor(child: ChildProcess, port: number, healthPort: number, metricsPort: number) {
    this.child = child;
    this.port = port;
    this.healthPort = healthPort;
    this.metricsPort = metricsPort;
    this.url = `rel://127.0.0.1:${port}`;
    child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = once(child, 'exit').then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as NodeJS.Signals | null,
    }));
  }

  /**
   * Starts a relay on free ports. A port found free can be taken by someone
   * else before the child binds it (a busy machine); then it retries on new ports.
   */
  static async start(options: RelayProcessOptions = {}): Promise<RelayProcess> {
    for (let attempt = 1; ; attempt++) {
      const relay = await RelayProcess.#spawn(options);
      try {
        await relay.waitReady();
        return relay;
      } catch (err) {
        await relay.stop();
        if (attempt >= 5 || !relay.output.includes('EADDRINUSE')) throw err;
      }
    }
  }

  static async #spawn(options: RelayProcessOptions): Promise<RelayProcess> {
    const [port, healthPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
    const child = spawn(process.execPath, [options.cliPath ?? CLI_PATH], {
      env: {
        PATH: process.env.PATH,
        NB_LISTEN_ADDRESS: `127.0.0.1:${port}`,
        NB_EXPOSED_ADDRESS: options.exposedAddress ?? `rel://127.0.0.1:${port}`,
        NB_AUTH_SECRET: TEST_SECRET,
        NB_METRICS_PORT: String(metricsPort),
        NB_HEALTH_LISTEN_ADDRESS: `127.0.0.1:${healthPort}`,
        NB_LOG_LEVEL: 'info',
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new RelayProcess(child, port, healthPort, metricsPort);
  }

  async readiness(): Promise<number> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.healthPort}/readyz`);
      return res.status;
    } catch {
      return 0;
    }
  }

  /** Polls /readyz until 200; fails with the process output if it exits or takes too long. */
  async waitReady(timeoutMs = 15_000): Promise<void> {
    let exited = false;
    void this.exited.then(() => (exited = true));
    await eventually(
      async () => {
        if (exited) throw new Error(`relay exited before ready:\n${this.output}`);
        return (await this.readiness()) === 200;
      },
      timeoutMs,
      'relay ready',
    ).catch((err: Error) => {
      throw exited ? err : new Error(`${err.message}:\n${this.output}`);
    });
  }

  async metrics(): Promise<string> {
    const res = await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`);
    return res.text();
  }

  /** Sum of the samples of `name` whose labels include `labels`, as /metrics shows them (0 if none). */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    let sum = 0;
    for (const line of (await this.metrics()).split('\n')) {
      const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!match || match[1] !== name) continue;
      const present = new Map(
        [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
      );
      if (Object.entries(labels).every(([key, value]) => present.get(key) === value)) sum += Number(match[3]);
    }
    return sum;
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  async stop(): Promise<void> {
    this.kill('SIGKILL');
    await this.exited;
  }
}
