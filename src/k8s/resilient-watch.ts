import { Watch, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { httpStatusOf } from '../net/status-code.js';
import { backoffDelayMs } from '../time/backoff.js';
import { systemClock, type Clock } from '../time/clock.js';
import { beforeDeadline } from '../time/deadline.js';
import type { KubernetesMetrics } from './k8s-metrics.js';

/** The part of a Kubernetes object the reflector needs. */
export interface KubeObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

export interface KubeList<T> {
  items: T[];
  metadata?: { resourceVersion?: string };
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface WatchTiming {
  /** Server-side timeoutSeconds of one watch request; each request picks a value in [t, 2t). */
  watchTimeoutSeconds: number;
  /** The watchdog aborts a watch still open this long after its server-side timeout, and relists. */
  watchdogGraceMs: number;
  /** Upper bound on a list request (client 1.x has no request timeout of its own). */
  listTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** A watch failing for this long without a successful list or watch is reported broken. */
  brokenAfterMs: number;
}

export const DEFAULT_WATCH_TIMING: WatchTiming = {
  watchTimeoutSeconds: 120,
  watchdogGraceMs: 30_000,
  listTimeoutMs: 30_000,
  backoffInitialMs: 500,
  backoffMaxMs: 30_000,
  brokenAfterMs: 60_000,
};

export interface ResilientWatchOptions<T extends KubeObject> {
  /** Label of logs and metrics: "endpointslices", "pods". */
  resource: string;
  kubeConfig: KubeConfig;
  /** Collection path, e.g. /apis/discovery.k8s.io/v1/namespaces/ns/endpointslices. */
  path: string;
  labelSelector?: string;
  list: () => Promise<KubeList<T>>;
  /**
   * Called for every change, including the differences a relist finds against
   * what was known before (deletes missed while the watch was down arrive as DELETED).
   */
  onEvent: (type: WatchEventType, object: T) => void;
  /** Called after each event batch: a relist, or one watch event. */
  onChange?: () => void;
  logger: Logger;
  metrics: KubernetesMetrics;
  timing?: Partial<WatchTiming>;
  /** Timers, deadlines and the watchdog run on this clock (tests step it). */
  clock?: Clock;
}

type RelistReason = 'start' | 'expired' | 'error' | 'watchdog';

class WatchEnded extends Error {
  constructor(
    readonly relist: RelistReason | undefined,
    readonly failure: unknown,
  ) {
    super('watch ended');
  }
}

/**
 * A list-then-watch reflector over one collection, built on the 1.x Watch
 * (which has no client-side timeout and does not restart after errors):
 * - every watch asks the server to end it after timeoutSeconds and resumes from
 *   the last resourceVersion (bookmarks keep that version fresh);
 * - a watchdog aborts a watch (or a hanging list/connect) that outlives that
 *   deadline and relists, so a silently dead connection cannot freeze the view;
 * - errors back off exponentially with jitter and relist; "410 Gone" relists at once;
 * - after brokenAfterMs of failures the watch reports itself broken (readiness, metric).
 */
export class ResilientWatch<T extends KubeObject> {
  private readonly options: ResilientWatchOptions<T>;
  private readonly timing: WatchTiming;
  private readonly watch: Watch;
  private readonly log: Logger;
  private readonly clock: Clock;
  private objects = new Map<string, T>();
  private resourceVersion = '';
  private closed = false;
  private synced = false;
  private failingSince: number | undefined;
  private current: { abort(): void } | undefined;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private firstSync: Promise<void>;
  private resolveFirstSync!: () => void;

  constructor(options: ResilientWatchOptions<T>) {
    this.options = options;
    this.timing = { ...DEFAULT_WATCH_TIMING, ...options.timing };
    this.clock = options.clock ?? systemClock;
    this.watch = new Watch(options.kubeConfig);
    this.log = options.logger.child({ component: 'k8s-watch', resource: options.resource });
    this.firstSync = new Promise((resolve) => (this.resolveFirstSync = resolve));
    options.metrics.watchUp.labels(options.resource).set(0);
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Resolves after the first successful list (or never, if the API stays unreachable). */
  waitForSync(): Promise<void> {
    return this.firstSync;
  }

  /** Current objects by namespace/name. */
  snapshot(): T[] {
    return [...this.objects.values()];
  }

  isSynced(): boolean {
    return this.synced;
  }

  /** Reason while the watch has failed for longer than brokenAfterMs. */
  notReadyReason(now = this.clock.now()): string | undefined {
    if (this.failingSince === undefined) return undefined;
    const failingMs = now - this.failingSince;
    if (failingMs < this.timing.brokenAfterMs) return undefined;
    this.options.metrics.watchUp.labels(this.options.resource).set(0);
    return `kubernetes ${this.options.resource} watch failing for ${Math.round(failingMs / 1000)} s`;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.current?.abort();
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    let reason: RelistReason = 'start';
    let failures = 0;
    const backoff = {
      initialMs: this.timing.backoffInitialMs,
      maxMs: this.timing.backoffMaxMs,
      multiplier: 2,
      spread: [0.5, 1] as const,
    };
    while (!this.closed) {
      try {
        if (!this.resourceVersion) {
          await this.relistNow(reason);
          failures = 0;
        }
        const startedAt = this.clock.monotonicMs();
        const ended = await this.watchOnce();
        if (ended.failure === undefined && ended.relist === undefined) {
          // The server ended the watch: resume from resourceVersion (pause if it ends at once, e.g. shutdown).
          if (this.clock.monotonicMs() - startedAt < 1000) await this.sleep(this.timing.backoffInitialMs);
          continue;
        }
        throw ended;
      } catch (err) {
        if (this.closed) break;
        const ended = err instanceof WatchEnded ? err : new WatchEnded('error', err);
        reason = ended.relist ?? 'error';
        this.resourceVersion = '';
        if (reason === 'expired') {
          this.log.info('watch resourceVersion expired; relisting');
          continue;
        }
        this.noteFailure(ended.failure ?? reason);
        await this.sleep(backoffDelayMs(failures++, backoff));
      }
    }
  }

  private async relistNow(reason: RelistReason): Promise<void> {
    this.options.metrics.watchRelists.labels(this.options.resource, reason).inc();
    const list = await this.withDeadline(this.options.list(), this.timing.listTimeoutMs, 'list');
    if (this.closed) return;
    const next = new Map<string, T>();
    for (const item of list.items) next.set(keyOf(item), item);
    const previous = this.objects;
    this.objects = next;
    this.resourceVersion = list.metadata?.resourceVersion ?? '';
    for (const [key, old] of previous) {
      if (!next.has(key)) this.emit('DELETED', old);
    }
    for (const [key, item] of next) {
      const old = previous.get(key);
      if (!old) this.emit('ADDED', item);
      else if (old.metadata?.resourceVersion !== item.metadata?.resourceVersion) this.emit('MODIFIED', item);
    }
    this.noteSuccess();
    if (!this.synced) {
      this.synced = true;
      this.resolveFirstSync();
    }
    this.options.onChange?.();
  }

  /** One watch request; resolves with how it ended. */
  private watchOnce(): Promise<WatchEnded> {
    const timeoutSeconds = Math.round(this.timing.watchTimeoutSeconds * (1 + Math.random()));
    const deadlineMs = timeoutSeconds * 1000 + this.timing.watchdogGraceMs;
    return new Promise<WatchEnded>((resolve) => {
      let settled = false;
      let controller: AbortController | undefined;
      const finish = (ended: WatchEnded): void => {
        if (settled) return;
        settled = true;
        this.clock.clearTimeout(watchdog);
        this.current = undefined;
        controller?.abort();
        resolve(ended);
      };
      const watchdog = this.clock.setTimeout(() => {
        this.log.warn({ deadline_ms: deadlineMs }, 'watch outlived its deadline; relisting');
        finish(new WatchEnded('watchdog', undefined));
      }, deadlineMs);
      this.current = { abort: () => finish(new WatchEnded('watchdog', undefined)) };
      const query: Record<string, string | number | boolean> = {
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds,
      };
      if (this.options.labelSelector) query.labelSelector = this.options.labelSelector;
      this.watch
        .watch(
          this.options.path,
          query,
          (type: string, object: T & { code?: number }) => {
            if (settled) return;
            this.onWatchEvent(type, object, finish);
          },
          (err: unknown) => {
            if (err && httpStatusOf(err) === 410) finish(new WatchEnded('expired', undefined));
            else if (err && !isAbort(err)) finish(new WatchEnded('error', err));
            else finish(new WatchEnded(undefined, undefined));
          },
        )
        .then(
          (c) => {
            controller = c;
            if (settled) c.abort();
            else this.noteSuccess();
          },
          (err: unknown) => finish(new WatchEnded('error', err)),
        );
    });
  }

  private onWatchEvent(type: string, object: T & { code?: number }, finish: (e: WatchEnded) => void): void {
    switch (type) {
      case 'ADDED':
      case 'MODIFIED':
        this.objects.set(keyOf(object), object);
        this.emit(type, object);
        break;
      case 'DELETED':
        this.objects.delete(keyOf(object));
        this.emit(type, object);
        break;
      case 'BOOKMARK':
        break;
      case 'ERROR':
        // A Status object: 410 means our resourceVersion is too old.
        finish(
          new WatchEnded(object.code === 410 ? 'expired' : 'error', object.code === 410 ? undefined : object),
        );
        return;
      default:
        return;
    }
    const version = object.metadata?.resourceVersion;
    if (version) this.resourceVersion = version;
    if (type !== 'BOOKMARK') this.options.onChange?.();
  }

  private emit(type: WatchEventType, object: T): void {
    this.options.metrics.watchEvents.labels(this.options.resource, type).inc();
    try {
      this.options.onEvent(type, object);
    } catch (err) {
      this.log.error({ err }, 'watch event handler failed');
    }
  }

  private noteSuccess(): void {
    if (this.failingSince !== undefined) this.log.info('watch recovered');
    this.failingSince = undefined;
    this.options.metrics.watchUp.labels(this.options.resource).set(1);
  }

  private noteFailure(err: unknown): void {
    this.options.metrics.watchFailures.labels(this.options.resource).inc();
    const now = this.clock.now();
    this.failingSince ??= now;
    const broken = this.notReadyReason(now);
    if (broken) this.options.metrics.watchUp.labels(this.options.resource).set(0);
    this.log.warn({ err, broken: broken !== undefined }, 'watch failed; retrying');
  }

  private withDeadline<R>(promise: Promise<R>, ms: number, what: string): Promise<R> {
    const aborted = new Promise<never>((_, reject) => {
      this.current = { abort: () => reject(new WatchEnded('watchdog', undefined)) };
    });
    const outcome = promise.catch((err: unknown) => {
      throw httpStatusOf(err) === 410 ? new WatchEnded('expired', undefined) : err;
    });
    const atDeadline = (): never => {
      throw new WatchEnded('watchdog', new Error(`${what} timed out`));
    };
    return beforeDeadline(Promise.race([outcome, aborted]), ms, atDeadline, this.clock).finally(() => {
      this.current = undefined;
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const clock = this.clock;
      const timer = clock.setTimeout(done, ms);
      function done(): void {
        clock.clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    }).then(() => {
      this.wake = undefined;
    });
  }
}

function keyOf(object: KubeObject): string {
  return `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;
}

function isAbort(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { name?: string }).name === 'AbortError';
}
