/**
 * The Go load generator (bench/loadgen): built on first use into
 * bench/loadgen/bin (git-ignored through bench/loadgen/.gitignore), run once
 * per measurement. Its stdout is JSON lines: events while it runs, then the result.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from './servers.js';

const DIR = join(ROOT, 'bench', 'loadgen');
export const LOADGEN_BIN = join(DIR, 'bin', 'loadgen');

export function buildLoadgen(): void {
  const newest = Math.max(
    ...readdirSync(DIR)
      .filter((f) => f.endsWith('.go') || f === 'go.mod')
      .map((f) => statSync(join(DIR, f)).mtimeMs),
  );
  if (existsSync(LOADGEN_BIN) && statSync(LOADGEN_BIN).mtimeMs > newest) return;
  execFileSync('go', ['build', '-o', LOADGEN_BIN, '.'], {
    cwd: DIR,
    stdio: 'inherit',
    env: { ...process.env, GOFLAGS: '-mod=mod', CGO_ENABLED: '0' },
  });
}

export function goVersion(): string {
  try {
    return execFileSync('go', ['version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'not installed';
  }
}

export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface LoadgenRun {
  child: ChildProcess;
  /** Resolves with the result line (the last line without "event"). */
  result: Promise<Json>;
  send(line: string): void;
}

/**
 * Starts the generator. `onEvent` runs for each event line, in order, before
 * the next line is looked at.
 */
export function startLoadgen(
  mode: string,
  args: string[],
  onEvent?: (e: Json) => void | Promise<void>,
): LoadgenRun {
  const child = spawn(LOADGEN_BIN, [mode, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-10_000);
    if (process.env.BENCH_VERBOSE) process.stderr.write(d);
  });
  let result: Json | undefined;
  let chain = Promise.resolve();
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (line) => {
    chain = chain.then(async () => {
      let msg: Json;
      try {
        msg = JSON.parse(line) as Json;
      } catch {
        return;
      }
      if (typeof msg.event === 'string') await onEvent?.(msg);
      else result = msg;
    });
  });
  const done = new Promise<Json>((res, rej) => {
    child.on('exit', (code, signal) => {
      void chain.then(() => {
        if (result) res(result);
        else rej(new Error(`loadgen ${mode} exited (${code ?? signal}) without a result:\n${stderr}`));
      });
    });
  });
  return {
    child,
    result: done,
    send: (line: string) => {
      child.stdin!.write(line + '\n');
    },
  };
}

export function runLoadgen(
  mode: string,
  args: string[],
  onEvent?: (e: Json) => void | Promise<void>,
): Promise<Json> {
  return startLoadgen(mode, args, onEvent).result;
}
