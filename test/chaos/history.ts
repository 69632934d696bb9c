import { createWriteStream, type WriteStream } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** One observation; `t` is milliseconds on a monotonic clock since the run started. */
export type HistoryEvent = { t: number; k: string } & Record<string, unknown>;

/** Appends observations as JSON lines, stamped with a monotonic clock. */
export class HistoryWriter {
  readonly #out: WriteStream;
  readonly #origin = performance.now();

  constructor(file: string) {
    this.#out = createWriteStream(file);
  }

  now(): number {
    return Math.round((performance.now() - this.#origin) * 1000) / 1000;
  }

  write(k: string, fields: Record<string, unknown> = {}): void {
    this.writeAt(this.now(), k, fields);
  }

  /** For an observation that is only known afterwards (a stall is seen when it ends). */
  writeAt(t: number, k: string, fields: Record<string, unknown> = {}): void {
    this.#out.write(`${JSON.stringify({ t, k, ...fields })}\n`);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#out.end(resolve));
  }
}
