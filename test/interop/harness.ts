// Process plumbing for the interop suite: Go build cache, free ports,
// managed child processes (relays, redis, the Go interop driver).
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readdirSync, statSync, type WriteStream } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { eventually } from '../support/eventually.js';

export const INTEROP_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(INTEROP_DIR, '..', '..');
export const BIN_DIR = join(INTEROP_DIR, 'bin');
export const INTEROP_BIN = join(BIN_DIR, 'interop');
export const NETBIRD_RELAY_BIN = join(BIN_DIR, 'netbird-relay');
export const CACHE_DIR = join(ROOT, '.cache');
export const LOG_DIR = join(CACHE_DIR, 'interop-logs');

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function newestMtime(dir: string, pred: (name: string) => boolean): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'bin') newest = Math.max(newest, newestMtime(p, pred));
    } else if (pred(entry.name)) {
      newest = Math.max(newest, statSync(p).mtimeMs);
    }
  }
  return newest;
}

/** Run a command to completion; rejects with its output on failure. */
function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<void> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, GOFLAGS: '-mod=mod' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      rej(err);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) res();
      else rej(new Error(`${cmd} ${args.join(' ')} failed (${code ?? signal}):\n${out}`));
    });
  });
}

/**
 * Builds the Go driver and NetBird's relay unless both binaries are newer
 * than go.mod, go.sum and every Go source of the module.
 */
export async function buildGoBinaries(timeoutMs: number): Promise<{ built: boolean; ms: number }> {
  const sources = newestMtime(INTEROP_DIR, (n) => n.endsWith('.go') || n === 'go.mod' || n === 'go.sum');
  const fresh = [INTEROP_BIN, NETBIRD_RELAY_BIN].every((b) => existsSync(b) && statSync(b).mtimeMs > sources);
  if (fresh) return { built: false, ms: 0 };
  const start = Date.now();
  mkdirSync(BIN_DIR, { recursive: true });
  await run('go', ['build', '-o', INTEROP_BIN, './cmd/interop'], INTEROP_DIR, timeoutMs);
  await run(
    'go',
    ['build', '-o', NETBIRD_RELAY_BIN, 'github.com/netbirdio/netbird/relay'],
    INTEROP_DIR,
    timeoutMs,
  );
  return { built: true, ms: Date.now() - start };
}

export { freePorts } from '../support/free-port.js';

/** The environment without NB_* settings (so none leak into a relay or client). */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('NB_')) env[k] = v;
  }
  return { ...env, ...extra };
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** Kill every process started through this module that is still running. */
export function killAll(): void {
  for (const c of live) c.kill('SIGKILL');
}

export interface ProcessSpec {
  name: string;
  cmd: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** resolves when the process is ready to serve (polled) */
  readyUrl?: string;
}

/** A long-running child process (relay, redis) that can be stopped and started again. */
export class ManagedProcess {
  child: ChildProcess | undefined;
  private exited: Promise<number | string> = Promise.resolve('not started');
  private log: WriteStream;

  constructor(readonly spec: ProcessSpec) {
    mkdirSync(LOG_DIR, { recursive: true });
    this.log = createWriteStream(join(LOG_DIR, `${spec.name}.log`), { flags: 'w' });
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(readyTimeoutMs = 20_000): Promise<void> {
    const { cmd, args, env, cwd } = this.spec;
    this.log.write(`\n=== ${new Date().toISOString()} start: ${cmd} ${args.join(' ')}\n`);
    const child = spawn(cmd, args, { env, cwd: cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    live.add(child);
    child.stdout?.pipe(this.log, { end: false });
    child.stderr?.pipe(this.log, { end: false });
    this.exited = new Promise((res) => {
      child.on('exit', (code, signal) => {
        live.delete(child);
        this.log.write(`=== ${new Date().toISOString()} exit: ${code ?? signal}\n`);
        res(code ?? signal ?? 'unknown');
      });
      child.on('error', (err) => {
        live.delete(child);
        res(`spawn error: ${err.message}`);
      });
    });
    if (this.spec.readyUrl) await this.waitReady(this.spec.readyUrl, readyTimeoutMs);
  }

  private async waitReady(url: string, timeoutMs: number): Promise<void> {
    let last = '';
    let exitedEarly: Error | undefined;
    const ready = async (): Promise<boolean> => {
      if (!this.running) {
        exitedEarly = new Error(
          `${this.spec.name} exited (${await this.exited}) before it was ready; see ${this.logPath}`,
        );
        throw exitedEarly;
      }
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
        if (res.status === 200) return true;
        last = `HTTP ${res.status}`;
      } catch (err) {
        last = (err as Error).message;
      }
      return false;
    };
    await eventually(ready, timeoutMs, `${this.spec.name} ready`, 100).catch((err: unknown) => {
      if (err === exitedEarly) throw err;
      throw new Error(
        `${this.spec.name} not ready at ${url} within ${timeoutMs} ms (${last}); see ${this.logPath}`,
      );
    });
  }

  get logPath(): string {
    return join(LOG_DIR, `${this.spec.name}.log`);
  }

  /** Send a signal and wait for the exit; SIGKILL after timeoutMs. */
  async stop(
    signal: NodeJS.Signals,
    timeoutMs: number,
  ): Promise<{ exit: number | string; ms: number; killed: boolean }> {
    const start = Date.now();
    if (!this.running) return { exit: await this.exited, ms: 0, killed: false };
    this.child?.kill(signal);
    const timer = sleep(timeoutMs).then(() => 'timeout' as const);
    const first = await Promise.race([this.exited, timer]);
    if (first === 'timeout') {
      this.child?.kill('SIGKILL');
      return { exit: await this.exited, ms: Date.now() - start, killed: true };
    }
    return { exit: first, ms: Date.now() - start, killed: false };
  }
}

export type ScenarioResult = {
  scenario: string;
  pass: boolean;
  reason: string;
  durationMs: number;
  [k: string]: unknown;
};

export interface DriverEvent {
  event: string;
  url?: string;
  index?: number;
  [k: string]: unknown;
}

/** Sends the driver one command line (on its stdin), for scenarios a controller steers. */
export type DriverReply = (command: string) => void;

/**
 * Runs the Go driver for one scenario. Lines with "event" go to onEvent
 * (awaited before the next line is handled) with a `reply` that writes a
 * command to the driver's stdin; the line with "scenario" is the result. If
 * onEvent throws, the driver's stdin is closed, so a driver waiting for a
 * command ends instead of running into the timeout. The driver's stderr
 * (NetBird client logs) goes to a log file.
 */
export function runDriver(
  name: string,
  args: string[],
  timeoutMs: number,
  onEvent?: (e: DriverEvent, reply: DriverReply) => Promise<Record<string, unknown> | void>,
): Promise<ScenarioResult> {
  mkdirSync(LOG_DIR, { recursive: true });
  const logPath = join(LOG_DIR, `driver-${name}.log`);
  const log = createWriteStream(logPath, { flags: 'w' });
  const started = Date.now();
  return new Promise((res) => {
    const child = spawn(INTEROP_BIN, args, { env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(child);
    child.stderr.pipe(log);
    // a driver that exited before reading its command makes the write fail; its result says why
    child.stdin.on('error', (err) => log.write(`[stdin] ${err.message}\n`));
    const reply: DriverReply = (command) => {
      if (child.stdin.writable) child.stdin.write(`${command}\n`);
    };
    let result: ScenarioResult | undefined;
    const extra: Record<string, unknown> = {};
    let chain = Promise.resolve();
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      chain = chain.then(async () => {
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line) as Record<string, unknown>;
        } catch {
          log.write(`[stdout] ${line}\n`);
          return;
        }
        if (typeof msg.event === 'string') {
          if (onEvent) {
            try {
              Object.assign(extra, (await onEvent(msg as unknown as DriverEvent, reply)) ?? {});
            } catch (err) {
              extra.controllerError = (err as Error).message;
              child.stdin.end();
            }
          }
        } else if (typeof msg.scenario === 'string') {
          result = msg as ScenarioResult;
        }
      });
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      lines.close();
      void chain.then(() => {
        const base: ScenarioResult = result ?? {
          scenario: name,
          pass: false,
          reason: `driver exited (${code ?? signal}) without a result${signal === 'SIGKILL' ? ` (killed after ${timeoutMs} ms)` : ''}; see ${logPath}`,
          durationMs: Date.now() - started,
        };
        if (typeof extra.controllerError === 'string' && base.pass) {
          base.pass = false;
          base.reason = `controller: ${extra.controllerError}`;
        }
        res({ ...base, ...extra, scenario: base.scenario, pass: base.pass, reason: base.reason });
      });
    });
  });
}
