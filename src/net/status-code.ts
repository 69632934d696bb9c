/**
 * The HTTP status of a failed API call: @kubernetes/client-node 1.x puts it in
 * `code` (ApiException) and watch errors in `statusCode`.
 */
export function httpStatusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const record = err as { statusCode?: unknown; code?: unknown };
  if (typeof record.statusCode === 'number') return record.statusCode;
  if (typeof record.code === 'number') return record.code;
  return undefined;
}
