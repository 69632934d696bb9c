import type { Logger } from 'pino';
import type { RedisRegistryMetrics } from './redis-registry-metrics.js';
import { connectRedis, type RedisConnections } from './redis/connections.js';

export type ConnectionName = 'command' | 'subscriber';

export interface ConnectionHealthHooks {
  /** A connection became ready (`subscriber`: subscribed to `channel`) or was lost. */
  onChange(connection: ConnectionName, up: boolean): void;
  /** Redis Cluster: a node left the slot map (a master failed over). */
  onClusterNodeLost(): void;
  onMessage(message: string): void;
}

const ALL_SENTINELS_TRIED = 'All sentinels are unreachable.';
const AUTH_FAILURE = /WRONGPASS|NOAUTH|invalid password|invalid username-password/i;
/** Distinct failures remembered per connection before the memory is cleared (bounds it). */
const MAX_REMEMBERED_FAILURES = 16;

/**
 * Whether the two registry connections (commands, event subscription) are up, and why not.
 * Each distinct failure is logged once at warn until the connection is ready again (a client
 * retrying every 500 ms would otherwise log the same line forever).
 */
export class ConnectionHealth {
  readonly #connections: RedisConnections;
  readonly #channel: string;
  readonly #logger: Logger;
  readonly #metrics: Pick<RedisRegistryMetrics, 'redisUp' | 'subscriptionUp'>;
  readonly #hooks: ConnectionHealthHooks;
  readonly #up = { command: false, subscriber: false };
  /** Why each connection last failed (message only, never the failed command), until it is ready again. */
  readonly #errors: { command?: string; subscriber?: string } = {};
  readonly #logged = { command: new Set<string>(), subscriber: new Set<string>() };
  #closed = false;

  constructor(options: {
    connections: RedisConnections;
    channel: string;
    logger: Logger;
    metrics: Pick<RedisRegistryMetrics, 'redisUp' | 'subscriptionUp'>;
    hooks: ConnectionHealthHooks;
  }) {
    this.#connections = options.connections;
    this.#channel = options.channel;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#hooks = options.hooks;
  }

  get commandUp(): boolean {
    return this.#up.command;
  }

  get subscriptionUp(): boolean {
    return this.#up.subscriber;
  }

  /** Why a connection is not up, or undefined when both are. */
  reason(): string | undefined {
    const because = (error: string | undefined): string => (error === undefined ? '' : `: ${error}`);
    if (!this.#up.command) return `redis unreachable${because(this.#errors.command)}`;
    if (!this.#up.subscriber) return `peer event subscription down${because(this.#errors.subscriber)}`;
    return undefined;
  }

  /** Attaches to both connections and connects them (each keeps retrying by itself). */
  start(): void {
    const { command, subscriber } = this.#connections;
    command.on('ready', () => this.#setUp('command', true));
    command.on('close', () => this.#setUp('command', false));
    command.on('end', () => this.#setUp('command', false));
    command.on('error', (err: unknown) => this.#onError('command', err));
    // Sentinel mode: why a Sentinel gave no primary (refused us, does not know the master name).
    command.on('sentinelError', (err: unknown) => this.#onError('command', err));
    if (this.#connections.isCluster) {
      command.on('-node', () => {
        if (!this.#closed) this.#hooks.onClusterNodeLost();
      });
    }
    subscriber.on('ready', () => void this.#subscribe());
    subscriber.on('close', () => this.#setUp('subscriber', false));
    subscriber.on('end', () => this.#setUp('subscriber', false));
    subscriber.on('error', (err: unknown) => this.#onError('subscriber', err));
    subscriber.on('sentinelError', (err: unknown) => this.#onError('subscriber', err));
    subscriber.on('message', (_channel: string, message: string) => this.#hooks.onMessage(message));
    void connectRedis(command);
    void connectRedis(subscriber);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#setUp('command', false);
    this.#setUp('subscriber', false);
    const { command, subscriber } = this.#connections;
    await Promise.allSettled([command.quit(), subscriber.quit()]);
    command.disconnect();
    subscriber.disconnect();
  }

  async #subscribe(): Promise<void> {
    try {
      // Subscribing ourselves (idempotent) tells us when the subscription is really active.
      await this.#connections.subscriber.subscribe(this.#channel);
    } catch (err) {
      this.#logger.warn({ err }, 'subscribing to peer events failed');
      return;
    }
    this.#setUp('subscriber', true);
  }

  #setUp(connection: ConnectionName, up: boolean): void {
    if (up === this.#up[connection]) return;
    this.#up[connection] = up;
    (connection === 'command' ? this.#metrics.redisUp : this.#metrics.subscriptionUp).set(up ? 1 : 0);
    if (up) {
      delete this.#errors[connection];
      this.#logged[connection].clear();
      if (connection === 'command') this.#logger.info('redis command connection ready');
    } else if (!this.#closed) {
      this.#logger.warn(
        connection === 'command' ? 'redis command connection lost' : 'peer event subscription lost',
      );
    }
    this.#hooks.onChange(connection, up);
  }

  /**
   * A connection attempt or a live connection failed. The client retries by itself; the reason is
   * kept for reason() and logged once per distinct failure. The error object is not logged:
   * ioredis attaches the failed command with its arguments (AUTH carries the password).
   */
  #onError(connection: ConnectionName, err: unknown): void {
    const reason = describeRedisError(err);
    const logged = this.#logged[connection];
    // ioredis reports "All sentinels are unreachable." without a cause when it merely ran out of
    // Sentinels to try after the primary failed: keep the cause we already know.
    const vague = reason === ALL_SENTINELS_TRIED && this.#errors[connection] !== undefined;
    if (!vague) this.#errors[connection] = reason;
    if (this.#closed) return;
    if (vague || logged.has(reason)) {
      this.#logger.debug({ connection, reason }, 'redis connection error');
      return;
    }
    if (logged.size >= MAX_REMEMBERED_FAILURES) logged.clear();
    logged.add(reason);
    this.#logger.warn({ connection, reason }, 'redis connection failed; retrying');
  }
}

/**
 * One line on why a Redis connection failed, from the error message alone (a Redis Cluster's
 * "failed to refresh slots" carries the node's error inside). Authentication failures say so and
 * name the settings to check.
 */
export function describeRedisError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const lastNodeError = (err as { lastNodeError?: unknown }).lastNodeError;
  let text = err.message.replace(/ Retrying from scratch after \d+ms\./, '');
  if (lastNodeError instanceof Error) text += ` (last node error: ${lastNodeError.message})`;
  if (!AUTH_FAILURE.test(text)) return text;
  const settings = /sentinel/i.test(text)
    ? 'NB_REDIS_SENTINEL_PASSWORD'
    : 'NB_REDIS_USERNAME / NB_REDIS_PASSWORD (or the credentials in NB_REDIS_URL)';
  return `authentication failed (${text}); check ${settings}`;
}
