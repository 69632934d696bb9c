import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface TlsPair {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** What one poll found; a metric label, so a test (or an operator) can count polls. */
export type TlsCheckResult = 'unchanged' | 'reloaded' | 'refused' | 'unreadable';

export interface TlsReloaderOptions {
  readonly certFile: string;
  readonly keyFile: string;
  readonly intervalMs: number;
  /** Installs a pair for new handshakes; throws when the pair is unusable (key does not match …). */
  readonly apply: (pair: TlsPair) => void;
  readonly onReloaded: () => void;
  /** The pair was refused: the error of `apply` (or of loading the pair). */
  readonly onError: (err: unknown) => void;
  readonly onChecked?: (result: TlsCheckResult) => void;
}

/**
 * Polls the certificate and key files (by content, so an atomic symlink swap of
 * a mounted Secret counts) and installs a changed pair. A pair that does not
 * load keeps the old one and is reported once, not on every poll.
 */
export class TlsReloader {
  readonly #options: TlsReloaderOptions;
  readonly #timer: NodeJS.Timeout;
  #current: string;
  #lastBad: string | undefined;

  constructor(options: TlsReloaderOptions, initial: TlsPair) {
    this.#options = options;
    this.#current = fingerprint(initial);
    this.#timer = setInterval(() => this.check(), options.intervalMs);
    this.#timer.unref();
  }

  check(): TlsCheckResult {
    const result = this.#check();
    this.#options.onChecked?.(result);
    return result;
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #check(): TlsCheckResult {
    let pair: TlsPair;
    try {
      pair = { cert: readFileSync(this.#options.certFile), key: readFileSync(this.#options.keyFile) };
    } catch {
      // Mid-swap a file can be missing for a moment; the next poll sees the settled state.
      return 'unreadable';
    }
    const print = fingerprint(pair);
    // A pair refused before is not retried or reported again until its files change.
    if (print === this.#current || print === this.#lastBad) return 'unchanged';
    try {
      this.#options.apply(pair);
    } catch (err) {
      this.#lastBad = print;
      this.#options.onError(err);
      return 'refused';
    }
    this.#current = print;
    this.#lastBad = undefined;
    this.#options.onReloaded();
    return 'reloaded';
  }
}

function fingerprint(pair: TlsPair): string {
  return createHash('sha256').update(pair.cert).update('\0').update(pair.key).digest('hex');
}
