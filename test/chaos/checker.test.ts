import { describe, expect, it } from 'vitest';
import { check, explain, parseHistory, withoutHostStalls, type ViolationKind } from './checker.js';

/** Builds a history from events (t, kind, fields), numbered as lines of a file. */
function history(...events: [number, string, Record<string, unknown>?][]): string {
  return events.map(([t, k, fields]) => JSON.stringify({ t, k, ...fields })).join('\n');
}

const RUN: [number, string, Record<string, unknown>] = [
  0,
  'run',
  { boundMs: 1_000, displaceMs: 100, rssBoundBytes: 1_000_000 },
];
// Two peers, one session each, each seeing the other online.
const BASE: [number, string, Record<string, unknown>][] = [
  RUN,
  [1, 'sess', { peer: 'a', s: 1, phase: 'up' }],
  [2, 'sess', { peer: 'b', s: 1, phase: 'up' }],
  [3, 'on', { peer: 'a', s: 1, of: 'b' }],
  [4, 'on', { peer: 'b', s: 1, of: 'a' }],
];
const TAIL: [number, string, Record<string, unknown>] = [60_000, 'end', {}];

function kinds(text: string): ViolationKind[] {
  return [...new Set(check(parseHistory(text)).violations.map((v) => v.kind))];
}

describe('chaos checker', () => {
  it('passes a clean history: delivered messages, a reconnect, a scheduled kill', () => {
    const text = history(
      ...BASE,
      [10, 'send', { peer: 'a', s: 1, to: 'b', seq: 1 }],
      [11, 'recv', { peer: 'b', s: 1, from: 'a', fs: 1, seq: 1, dst: 'b' }],
      [20, 'sess', { peer: 'a', s: 1, phase: 'down' }],
      [21, 'off', { peer: 'b', s: 1, of: 'a' }],
      [22, 'sess', { peer: 'a', s: 2, phase: 'up' }],
      [23, 'on', { peer: 'b', s: 1, of: 'a' }],
      [30, 'send', { peer: 'a', s: 2, to: 'b', seq: 2 }],
      [31, 'recv', { peer: 'b', s: 1, from: 'a', fs: 2, seq: 2, dst: 'b' }],
      [40, 'exit', { pod: 'pod-1', code: null, signal: 'SIGKILL', scheduled: true }],
      [41, 'rss', { pod: 'pod-1', bytes: 500_000 }],
      TAIL,
    );
    const verdict = check(parseHistory(text));
    expect(verdict.violations).toEqual([]);
    expect(verdict.stats).toMatchObject({ sent: 2, delivered: 2, lost: 0, peakRssBytes: 500_000 });
  });

  it('catches an online of a newer session before the offline of the old one', () => {
    expect(kinds(history(...BASE, [10, 'on', { peer: 'a', s: 1, of: 'b' }], TAIL))).toEqual(['notify-order']);
  });

  it('catches an offline without an online, and two offlines for one session', () => {
    expect(kinds(history(RUN, [1, 'off', { peer: 'a', s: 1, of: 'b' }], TAIL))).toEqual(['notify-order']);
    const twice = history(
      ...BASE,
      [10, 'off', { peer: 'a', s: 1, of: 'b' }],
      [11, 'off', { peer: 'a', s: 1, of: 'b' }],
      TAIL,
    );
    expect(kinds(twice)).toEqual(['notify-order']);
  });

  it('catches data from a replaced sender session long after the newer one came up', () => {
    const stale = (t: number): string =>
      history(
        ...BASE,
        [10, 'sess', { peer: 'a', s: 2, phase: 'up' }],
        [t, 'recv', { peer: 'b', s: 1, from: 'a', fs: 1, seq: 1, dst: 'b' }],
        [t + 1, 'sess', { peer: 'a', s: 1, phase: 'down' }],
        TAIL,
      );
    // Within displaceMs (100 ms): the relay may not have displaced the old session yet.
    expect(kinds(stale(50))).toEqual([]);
    expect(kinds(stale(500))).toEqual(['session-regress']);
  });

  it('catches a message delivered to a peer other than its destination', () => {
    const text = history(
      ...BASE,
      [10, 'send', { peer: 'a', s: 1, to: 'c', seq: 1 }],
      [11, 'recv', { peer: 'b', s: 1, from: 'a', fs: 1, seq: 1, dst: 'c' }],
      TAIL,
    );
    expect(kinds(text)).toEqual(['misdelivery']);
  });

  it('catches a duplicated message', () => {
    const text = history(
      ...BASE,
      [10, 'send', { peer: 'a', s: 1, to: 'b', seq: 1 }],
      [11, 'recv', { peer: 'b', s: 1, from: 'a', fs: 1, seq: 1, dst: 'b' }],
      [12, 'recv', { peer: 'b', s: 1, from: 'a', fs: 1, seq: 1, dst: 'b' }],
      TAIL,
    );
    expect(kinds(text)).toEqual(['duplicate']);
  });

  it('catches delivery to an older session after a newer one received, past the displacement lag', () => {
    const stale = (t: number): string =>
      history(
        ...BASE,
        [10, 'sess', { peer: 'b', s: 2, phase: 'up' }],
        [11, 'send', { peer: 'a', s: 1, to: 'b', seq: 1 }],
        [12, 'recv', { peer: 'b', s: 2, from: 'a', fs: 1, seq: 1, dst: 'b' }],
        [t - 1, 'send', { peer: 'a', s: 1, to: 'b', seq: 2 }],
        [t, 'recv', { peer: 'b', s: 1, from: 'a', fs: 1, seq: 2, dst: 'b' }],
        [t + 1, 'sess', { peer: 'b', s: 1, phase: 'down' }],
        TAIL,
      );
    // Within displaceMs (100 ms here) the old pod may not have seen the newer session's event yet.
    expect(kinds(stale(50))).toEqual([]);
    expect(kinds(stale(500))).toEqual(['stale-session']);
  });

  it('orders a peer’s sessions by the client’s dials, not by which ended first', () => {
    // b#2 dials after b#1 is up, so it is the newer one, even though a burst of closes
    // ends it 3 ms before b#1 (ending first called b#2 older: a stale-session of the newer one).
    const burst = (...rest: [number, string, Record<string, unknown>?][]): string =>
      history(
        ...BASE,
        [10, 'send', { peer: 'a', s: 1, to: 'b', seq: 1 }],
        [11, 'recv', { peer: 'b', s: 1, from: 'a', fs: 1, seq: 1, dst: 'b' }],
        [20, 'dial', { peer: 'b', s: 2 }],
        [22, 'sess', { peer: 'b', s: 2, phase: 'up' }],
        [500, 'send', { peer: 'a', s: 1, to: 'b', seq: 2 }],
        [501, 'recv', { peer: 'b', s: 2, from: 'a', fs: 1, seq: 2, dst: 'b' }],
        ...rest,
        [900, 'sess', { peer: 'b', s: 2, phase: 'down' }],
        [903, 'sess', { peer: 'b', s: 1, phase: 'down' }],
        TAIL,
      );
    expect(kinds(burst())).toEqual([]);
    // The older session receiving after the newer one did is still caught (ending last no longer hides it).
    const stale = burst(
      [699, 'send', { peer: 'a', s: 1, to: 'b', seq: 3 }],
      [700, 'recv', { peer: 'b', s: 1, from: 'a', fs: 1, seq: 3, dst: 'b' }],
    );
    expect(kinds(stale)).toEqual(['stale-session']);
  });

  it('catches a loss outside any fault window, and excuses one inside', () => {
    const lost = history(...BASE, [10_000, 'send', { peer: 'a', s: 1, to: 'b', seq: 1 }], TAIL);
    expect(kinds(lost)).toEqual(['loss']);
    const excused = history(
      ...BASE,
      [9_500, 'fault', { id: 1, kind: 'kill-pod', phase: 'start' }],
      [9_800, 'fault', { id: 1, kind: 'kill-pod', phase: 'end' }],
      [10_000, 'send', { peer: 'a', s: 1, to: 'b', seq: 1 }],
      TAIL,
    );
    expect(kinds(excused)).toEqual([]);
    // The window ends at the fault's end plus the bound (1 s here).
    const late = history(
      ...BASE,
      [9_500, 'fault', { id: 1, kind: 'kill-pod', phase: 'start' }],
      [9_800, 'fault', { id: 1, kind: 'kill-pod', phase: 'end' }],
      [10_900, 'send', { peer: 'a', s: 1, to: 'b', seq: 1 }],
      TAIL,
    );
    expect(kinds(late)).toEqual(['loss']);
  });

  it('judges a host stall as a recorded fault of its own kind, counted, and shows what it excused', () => {
    // The driver did not run from 9,400 to 9,900 ms: a late delivery from a replaced session
    // and a lost message fall in its window (plus the bound).
    const stall = (phase: string): [number, string, Record<string, unknown>] => [
      phase === 'start' ? 9_400 : 9_900,
      'fault',
      { id: 'stall-1', kind: 'host-stall', pod: 'driver', ms: 500, phase },
    ];
    const lost = history(
      ...BASE,
      stall('start'),
      stall('end'),
      [10_000, 'send', { peer: 'a', s: 1, to: 'b', seq: 9 }],
      TAIL,
    );
    expect(kinds(lost)).toEqual([]);
    expect(check(withoutHostStalls(parseHistory(lost))).violations.map((v) => v.kind)).toEqual(['loss']);
    const text = history(
      ...BASE,
      stall('start'),
      stall('end'),
      [9_500, 'sess', { peer: 'a', s: 2, phase: 'up' }],
      [10_100, 'recv', { peer: 'b', s: 1, from: 'a', fs: 1, seq: 2, dst: 'b' }],
      [20_000, 'send', { peer: 'a', s: 2, to: 'b', seq: 3 }],
      [20_001, 'recv', { peer: 'b', s: 1, from: 'a', fs: 2, seq: 3, dst: 'b' }],
      TAIL,
    );
    const verdict = check(parseHistory(text));
    expect(verdict.violations).toEqual([]);
    expect(verdict.stats.faults).toEqual({ 'host-stall': 1 });
    expect(verdict.stats.hostStalls).toEqual({ count: 1, totalMs: 500, longestMs: 500 });
    // Without the recorded stall the same observations are violations: nothing else excused them.
    const strict = check(withoutHostStalls(parseHistory(text)));
    expect(strict.violations.map((v) => v.kind).sort()).toEqual(['session-regress']);
    expect(strict.stats.hostStalls.count).toBe(0);
    // The stall's window ends at its end plus the bound (1 s), like any fault's.
    const after = history(
      ...BASE,
      stall('start'),
      stall('end'),
      [11_000, 'send', { peer: 'a', s: 1, to: 'b', seq: 1 }],
      TAIL,
    );
    expect(kinds(after)).toEqual(['loss']);
  });

  it('catches a peer that does not converge after the heal, and a final message lost', () => {
    const noReady = history(...BASE, [100, 'heal', {}], [100, 'ready', { peer: 'a', s: 1 }], TAIL);
    expect(kinds(noReady)).toEqual(['no-convergence']);
    const slow = history(
      ...BASE,
      [100, 'heal', {}],
      [100, 'ready', { peer: 'a', s: 1 }],
      [2_000, 'ready', { peer: 'b', s: 1 }],
      TAIL,
    );
    expect(kinds(slow)).toEqual(['no-convergence']);
    const finalLost = history(
      ...BASE,
      [100, 'heal', {}],
      [101, 'ready', { peer: 'a', s: 1 }],
      [101, 'ready', { peer: 'b', s: 1 }],
      [200, 'send', { peer: 'a', s: 1, to: 'b', seq: 9, fin: true }],
      TAIL,
    );
    expect(kinds(finalLost)).toEqual(['no-convergence']);
  });

  it('catches an unscheduled relay exit and an RSS over the bound', () => {
    const exit = history(RUN, [5, 'exit', { pod: 'pod-2', code: 1, signal: null, scheduled: false }], TAIL);
    expect(kinds(exit)).toEqual(['unexpected-exit']);
    expect(kinds(history(RUN, [5, 'rss', { pod: 'pod-2', bytes: 2_000_000 }], TAIL))).toEqual(['rss']);
  });

  it('measures recovery per fault kind: fault end until a pair that lost traffic gets through again', () => {
    const text = history(
      ...BASE,
      [1_000, 'fault', { id: 1, kind: 'pod-kill', phase: 'start' }],
      [1_200, 'send', { peer: 'a', s: 1, to: 'b', seq: 1 }], // lost during the fault
      [1_500, 'fault', { id: 1, kind: 'pod-kill', phase: 'end' }],
      [1_600, 'send', { peer: 'a', s: 1, to: 'b', seq: 2 }], // still lost after it
      [1_800, 'send', { peer: 'a', s: 1, to: 'b', seq: 3 }],
      [1_810, 'recv', { peer: 'b', s: 1, from: 'a', fs: 1, seq: 3, dst: 'b' }], // 310 ms after the end
      [5_000, 'fault', { id: 2, kind: 'redis-latency', phase: 'start' }],
      [5_100, 'send', { peer: 'b', s: 1, to: 'a', seq: 1 }],
      [5_400, 'fault', { id: 2, kind: 'redis-latency', phase: 'end' }],
      [5_420, 'send', { peer: 'b', s: 1, to: 'a', seq: 2 }],
      [5_450, 'recv', { peer: 'a', s: 1, from: 'b', fs: 1, seq: 2, dst: 'a' }],
      [5_500, 'fault', { id: 3, kind: 'mesh-partition', phase: 'start' }],
      [5_600, 'send', { peer: 'a', s: 1, to: 'b', seq: 4 }], // delivered: nothing broke
      [5_601, 'recv', { peer: 'b', s: 1, from: 'a', fs: 1, seq: 4, dst: 'b' }],
      [5_900, 'fault', { id: 3, kind: 'mesh-partition', phase: 'end' }],
      TAIL,
    );
    const verdict = check(parseHistory(text));
    expect(verdict.violations).toEqual([]);
    expect(verdict.stats.convergenceMsByFault).toEqual({ 'pod-kill': 310, 'redis-latency': 50 });
  });

  it('catches a race of two connections of one ID that both stay up, or that neither wins', () => {
    const race = (...rest: [number, string, Record<string, unknown>?][]): string =>
      history(
        ...BASE,
        [10, 'race', { peer: 'a', a: 2, b: 3 }],
        [20, 'sess', { peer: 'a', s: 2, phase: 'up' }],
        [25, 'sess', { peer: 'a', s: 3, phase: 'up' }],
        ...rest,
        TAIL,
      );
    // One loser closed within displaceMs (100 ms): fine.
    expect(kinds(race([60, 'sess', { peer: 'a', s: 2, phase: 'down' }]))).toEqual([]);
    // Both still up past it: the loser was never displaced.
    expect(kinds(race([500, 'sess', { peer: 'a', s: 2, phase: 'down' }]))).toEqual(['race']);
    // Both gone without a fault or the driver closing one: nobody won.
    expect(
      kinds(
        race(
          [60, 'sess', { peer: 'a', s: 2, phase: 'down' }],
          [61, 'sess', { peer: 'a', s: 3, phase: 'down' }],
        ),
      ),
    ).toEqual(['race']);
    // The driver closing one itself is not the relay's doing.
    expect(
      kinds(
        race(
          [60, 'close', { peer: 'a', s: 3 }],
          [61, 'sess', { peer: 'a', s: 3, phase: 'down' }],
          [62, 'sess', { peer: 'a', s: 2, phase: 'down' }],
        ),
      ),
    ).toEqual([]);
  });

  it('catches a fuzz bystander closed outside any fault window, and counts fuzz frames', () => {
    const closed = history(
      ...BASE,
      [100, 'fuzz-bystander', { pod: 'pod-1', who: 'watcher', code: 1008 }],
      [200, 'fuzz', { frames: 1234 }],
      TAIL,
    );
    expect(kinds(closed)).toEqual(['bystander-closed']);
    expect(check(parseHistory(closed)).stats.fuzzFrames).toBe(1234);
    const killed = history(
      ...BASE,
      [90, 'fault', { id: 1, kind: 'pod-kill', phase: 'start' }],
      [100, 'fuzz-bystander', { pod: 'pod-1', who: 'watcher', code: 1006 }],
      [150, 'fault', { id: 1, kind: 'pod-kill', phase: 'end' }],
      TAIL,
    );
    expect(kinds(killed)).toEqual([]);
  });

  it('catches bytes that are not a chaos message reaching a chaos client', () => {
    const text = history(
      ...BASE,
      [10, 'recv', { peer: 'b', s: 1, from: 'a', dst: '(not a chaos message)' }],
      TAIL,
    );
    expect(kinds(text)).toEqual(['misdelivery']);
  });

  it('prints the first violation with the surrounding history lines', () => {
    const text = history(...BASE, [10, 'on', { peer: 'a', s: 1, of: 'b' }], TAIL);
    const report = explain(text, check(parseHistory(text)), 1);
    expect(report).toContain('[notify-order]');
    expect(report).toContain('>> 6: {"t":10,"k":"on"');
    expect(report).toContain('   5: ');
  });
});
