import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';

export type RedisClient = Redis | Cluster;
type ScriptArg = string | number;

/**
 * The Lua scripts of lua/ (copied next to the compiled code at build, so the same relative path
 * works from src and dist), as ioredis custom commands: ioredis sends EVALSHA and falls back to
 * EVAL when the server does not know the script (fresh or restarted Redis, a failover, another
 * Cluster node).
 */
const SCRIPTS = {
  nbRegister: { file: 'register', keys: 3 },
  nbRestore: { file: 'restore', keys: 3 },
  nbCompareAndDelete: { file: 'compare-and-delete', keys: 1 },
  nbEpoch: { file: 'epoch', keys: 1 },
  nbHeartbeat: { file: 'heartbeat', keys: 6 },
  nbExpiredMembers: { file: 'expired-members', keys: 3 },
  nbForgetMember: { file: 'forget-member', keys: 4 },
} as const;

export type ScriptName = keyof typeof SCRIPTS;

const sources = new Map<ScriptName, string>();
function source(name: ScriptName): string {
  let lua = sources.get(name);
  if (lua === undefined) {
    lua = readFileSync(new URL(`./lua/${SCRIPTS[name].file}.lua`, import.meta.url), 'utf8');
    sources.set(name, lua);
  }
  return lua;
}

type ScriptCommand = (...keysThenArgs: ScriptArg[]) => Promise<unknown>;
const defined = new WeakSet<RedisClient>();

/** Runs one script on `client` (defining every script on it the first time). */
export function runScript(
  client: RedisClient,
  name: ScriptName,
  keys: readonly string[],
  args: readonly ScriptArg[],
): Promise<unknown> {
  if (keys.length !== SCRIPTS[name].keys)
    throw new Error(`${SCRIPTS[name].file}.lua takes ${SCRIPTS[name].keys} keys`);
  if (!defined.has(client)) {
    for (const script of Object.keys(SCRIPTS) as ScriptName[]) {
      client.defineCommand(script, { numberOfKeys: SCRIPTS[script].keys, lua: source(script) });
    }
    defined.add(client);
  }
  const command = (client as unknown as Record<ScriptName, ScriptCommand>)[name];
  return command.call(client, ...keys, ...args);
}
