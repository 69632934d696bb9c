import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';

export type RedisClient = Redis | Cluster;
type ScriptArg = string | number;

/**
 * One Lua script from src/registry/lua (copied next to the compiled code at
 * build, so the same relative path works from src and dist). Runs by SHA and
 * falls back to EVAL when the server does not know it yet (fresh or restarted
 * Redis, failover to a replica, another Cluster node).
 */
export class RedisScript {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
  readonly #numberOfKeys: number;

  constructor(name: string, numberOfKeys: number) {
    this.name = name;
    this.source = readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');
    this.sha = createHash('sha1').update(this.source).digest('hex');
    this.#numberOfKeys = numberOfKeys;
  }

  async run(client: RedisClient, keys: readonly string[], args: readonly ScriptArg[]): Promise<unknown> {
    if (keys.length !== this.#numberOfKeys)
      throw new Error(`${this.name}.lua takes ${this.#numberOfKeys} keys`);
    try {
      return await client.evalsha(this.sha, this.#numberOfKeys, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return await client.eval(this.source, this.#numberOfKeys, ...keys, ...args);
    }
  }
}

/** Every script of the cluster, loaded once per process. */
export const scripts = {
  register: new RedisScript('register', 2),
  restore: new RedisScript('restore', 2),
  compareAndDelete: new RedisScript('compare-and-delete', 1),
  epoch: new RedisScript('epoch', 1),
  heartbeat: new RedisScript('heartbeat', 4),
  expiredMembers: new RedisScript('expired-members', 1),
  forgetMember: new RedisScript('forget-member', 3),
} as const;
