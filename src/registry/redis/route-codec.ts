/**
 * The value of a route key, "token|instance|session": written by register.lua and restore.lua,
 * matched by compare-and-delete.lua and restore.lua, and published inside offline events.
 */
export interface StoredRoute {
  token: number;
  instance: string;
  /** First token of the session; a restore keeps it. */
  session: number;
}

/** Parses a route value; undefined when it is not one (instance ids never contain '|'). */
export function decodeStoredRoute(value: string): StoredRoute | undefined {
  const first = value.indexOf('|');
  const last = value.lastIndexOf('|');
  if (first <= 0 || last <= first) return undefined;
  return {
    token: Number(value.slice(0, first)),
    instance: value.slice(first + 1, last),
    session: Number(value.slice(last + 1)),
  };
}
