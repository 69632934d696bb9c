/**
 * The member info hash value "mesh address|pod name": written by heartbeat.lua, read by
 * forget-member.lua (the pod name) and by the heartbeat's caller. The mesh address may itself
 * contain ':' and '[...]', never '|' after the last one: the pod name is what follows the last '|'.
 */
export interface MemberRecord {
  readonly meshAddress: string;
  readonly podName: string;
}

export function decodeMemberRecord(value: string): MemberRecord {
  const split = value.lastIndexOf('|');
  return { meshAddress: value.slice(0, split), podName: value.slice(split + 1) };
}

/** The flat HGETALL list heartbeat.lua returns, as instance -> record. */
export function decodeMemberTable(flat: readonly string[]): Map<string, MemberRecord> {
  const members = new Map<string, MemberRecord>();
  for (let i = 0; i + 1 < flat.length; i += 2) {
    members.set(flat[i] as string, decodeMemberRecord(flat[i + 1] as string));
  }
  return members;
}
