// What a failed transfer says about itself: how far the bytes got, what each
// agent believed about the other, what the relays dropped or closed, and the
// agents' last warnings. Put into the assertion message, so a flake in CI
// explains itself without a rerun.
import { existsSync, readFileSync } from 'node:fs';
import type { Agent, PeerStatus } from './harness.js';
import { agentLog } from './harness.js';

/** Counters of either relay (ours or NetBird's) that tell of lost traffic or sessions. */
const TELLING_METRIC = /drop|close|reconnect|refus|fail|overflow|shed/i;

/** Non-zero counter samples whose name tells of loss, per relay metrics port. */
export async function relayLossCounters(metricsPorts: number[]): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const port of metricsPorts) {
    try {
      const text = await (
        await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5_000) })
      ).text();
      out[String(port)] = text
        .split('\n')
        .filter((l) => !l.startsWith('#') && TELLING_METRIC.test(l.split(/[{ ]/)[0] ?? ''))
        .filter((l) => Number(l.split(' ').pop()) !== 0);
    } catch (err) {
      out[String(port)] = [`metrics unreadable: ${(err as Error).message}`];
    }
  }
  return out;
}

/** The last warning/error lines of an agent's log (logrus text format). */
export function lastWarnings(name: string, count = 6): string[] {
  const path = agentLog(name);
  if (!existsSync(path)) return [];
  const lines = readFileSync(path, 'utf8').split('\n');
  return lines.filter((l) => /level=(warning|error|fatal|panic)/.test(l)).slice(-count);
}

async function viewOf(agent: Agent, other: Agent): Promise<PeerStatus | string> {
  try {
    const status = await agent.status();
    return status.peers.find((p) => p.pubKey === other.pubKey) ?? 'peer not in status';
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * A failed `tcp` reply of `from` to `to`, explained: the receiver's count of
 * the bytes it read on that connection (what TCP delivered), both ends' view
 * of the pair, the relays' loss counters and the agents' last warnings.
 */
export async function explainTransfer(
  reply: Record<string, unknown>,
  from: Agent,
  to: Agent,
  metricsPorts: number[],
): Promise<string> {
  const received = await to.request('received', 'received', 10_000);
  const local = typeof reply.local === 'string' ? reply.local : undefined;
  const transfers = Array.isArray(received.transfers) ? (received.transfers as { from: string }[]) : [];
  const atReceiver = local ? transfers.filter((t) => t.from === local) : transfers.slice(-3);
  const report = {
    reply,
    atReceiver,
    senderView: await viewOf(from, to),
    receiverView: await viewOf(to, from),
    relays: await relayLossCounters(metricsPorts),
    warnings: { [from.name]: lastWarnings(from.name), [to.name]: lastWarnings(to.name) },
    at: Date.now(),
  };
  return JSON.stringify(report);
}

// At most this much beyond what the receiver has counted. Unpaced, a 1 MiB
// burst at loopback speed loses 20–30 % of its WireGuard packets inside the
// receiving agent (its relay client keeps 100 messages per peer and drops the
// rest; the relay dropped none) and gVisor's TCP then sometimes sits out its
// retransmission backoff for up to ~30 s (see README, Compatibility). 64 KiB
// in flight (about 55 packets) stays within that queue. AGENTS_TCP_WINDOW=0
// sends unpaced, to reproduce it.
const TCP_WINDOW = Number(process.env.AGENTS_TCP_WINDOW ?? 64 * 1024);
const TCP_SECONDS = 30;

/**
 * `bytes` over TCP from `from` to `to` with a checksum; fails with the full
 * explanation when the transfer does not complete.
 */
export async function transfer(
  from: Agent,
  to: Agent,
  metricsPorts: number[],
  bytes = 1_048_576,
): Promise<{ ms: number; dialMs: number }> {
  const reply = await from.request(
    `tcp ${to.ip} ${bytes} ${TCP_SECONDS} ${TCP_WINDOW}`,
    'tcp',
    (TCP_SECONDS + 10) * 1000,
  );
  if (reply.ok !== true) {
    throw new Error(
      `${from.name}→${to.name} tcp failed: ${await explainTransfer(reply, from, to, metricsPorts)}`,
    );
  }
  return { ms: Number(reply.ms), dialMs: Number(reply.dialMs) };
}

/**
 * WireGuard bytes one side sent the other that never arrived, each way
 * (sent − received, from both agents' counters; what is still in flight counts too).
 */
export async function wireguardLoss(
  a: Agent,
  b: Agent,
): Promise<{ aToB: number; bToA: number; aSent: number; bSent: number }> {
  const [ab, ba] = await Promise.all([viewOf(a, b), viewOf(b, a)]);
  if (typeof ab === 'string' || typeof ba === 'string') return { aToB: NaN, bToA: NaN, aSent: 0, bSent: 0 };
  const aSent = ab.bytesTx ?? 0;
  const bSent = ba.bytesTx ?? 0;
  return { aToB: aSent - (ba.bytesRx ?? 0), bToA: bSent - (ab.bytesRx ?? 0), aSent, bSent };
}
