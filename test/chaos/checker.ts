import { readFileSync } from 'node:fs';

/*
 * The chaos checker: judges recorded histories against the relay's promises.
 * It reads only the history (JSON lines) and shares no code with the relay, so
 * a bug in the relay's rules cannot hide the same bug here.
 *
 * Events it understands (t = monotonic ms):
 *   run    {seed, topology, boundMs, rssBoundBytes}
 *   fault  {id, kind, phase: 'start'|'end'}         kind 'host-stall': the driver itself did not run
 *   dial   {peer, s}                              session s of peer starts connecting (s counts up per peer)
 *   sess   {peer, s, phase: 'up'|'down'}         a client session authenticated / ended
 *   on     {peer, s, of}                          session s of peer saw `of` online
 *   off    {peer, s, of}                          ... saw `of` go offline
 *   send   {peer, s, to, seq, fin?}               transport message, seq unique per sender
 *   recv   {peer, s, from, fs, seq, dst}          received; dst is what the payload says
 *   race   {peer, a, b}                           sessions a and b of peer were started racing each other
 *   close  {peer, s}                              the driver closed session s itself
 *   fuzz-bystander {pod, who, code}              a bystander of the live fuzzer was closed
 *   fuzz   {frames, outcomes, ...}                the live fuzzer's counts
 *   heal   {}                                     the last fault has healed
 *   ready  {peer, s}                              after heal: every partner of peer is open
 *   exit   {pod, code, signal, scheduled}
 *   rss    {pod, bytes}
 *   end    {}
 */

export type Event = { t: number; k: string; line: number } & Record<string, unknown>;

export type ViolationKind =
  | 'notify-order'
  | 'session-regress'
  | 'misdelivery'
  | 'duplicate'
  | 'stale-session'
  | 'loss'
  | 'no-convergence'
  | 'unexpected-exit'
  | 'race'
  | 'bystander-closed'
  | 'rss';

export interface Violation {
  kind: ViolationKind;
  message: string;
  line: number;
}

export interface Verdict {
  violations: Violation[];
  stats: {
    sent: number;
    delivered: number;
    lost: number;
    lostOutsideFaults: number;
    faults: Record<string, number>;
    worstConvergenceMs: number;
    /** Per fault kind, the worst time until traffic flowed again (see recoveryByFault). */
    convergenceMsByFault: Record<string, number>;
    fuzzFrames: number;
    /** Gaps in the driver's own scheduling, recorded as faults of kind host-stall. */
    hostStalls: { count: number; totalMs: number; longestMs: number };
    peakRssBytes: number;
    exits: number;
  };
}

export function parseHistory(text: string): Event[] {
  return text
    .split('\n')
    .map((raw, index) => ({ raw, line: index + 1 }))
    .filter(({ raw }) => raw.trim() !== '')
    .map(({ raw, line }) => ({ ...(JSON.parse(raw) as { t: number; k: string }), line }));
}

const str = (value: unknown): string => String(value);

export function check(events: Event[]): Verdict {
  const violations: Violation[] = [];
  const flag = (kind: ViolationKind, event: Event, message: string): void => {
    violations.push({ kind, message, line: event.line });
  };
  const run = events.find((e) => e.k === 'run');
  const boundMs = Number(run?.boundMs ?? 10_000);
  const rssBound = Number(run?.rssBoundBytes ?? 512 * 1024 * 1024);
  /*
   * A pod closes its copy of a replaced session when the newer session's event
   * reaches it over Redis pub/sub (DESIGN.md), so an old session may still get
   * local traffic for that event's lag: allowed up to displaceMs outside fault
   * windows (lag on loopback is milliseconds), up to boundMs inside them.
   */
  const displaceMs = Number(run?.displaceMs ?? 1_000);

  // Fault windows, each widened by the convergence bound.
  const windows: [number, number][] = [];
  const intervals: { kind: string; start: number; end: number }[] = [];
  const openFaults = new Map<string, number>();
  const faults: Record<string, number> = {};
  const hostStalls = { count: 0, totalMs: 0, longestMs: 0 };
  for (const e of events) {
    if (e.k !== 'fault') continue;
    if (e.phase === 'start' && e.kind === 'host-stall') {
      const ms = Number(e.ms ?? 0);
      hostStalls.count++;
      hostStalls.totalMs += ms;
      hostStalls.longestMs = Math.max(hostStalls.longestMs, ms);
    }
    if (e.phase === 'start') {
      openFaults.set(str(e.id), e.t);
      faults[str(e.kind)] = (faults[str(e.kind)] ?? 0) + 1;
    } else {
      const start = openFaults.get(str(e.id));
      openFaults.delete(str(e.id));
      if (start !== undefined) {
        windows.push([start, e.t + boundMs]);
        intervals.push({ kind: str(e.kind), start, end: e.t });
      }
    }
  }
  const endT = events.at(-1)?.t ?? 0;
  for (const start of openFaults.values()) windows.push([start, endT + boundMs]);
  const inFault = windowTest(windows);

  // Session lifetimes, per peer.
  const sessionKey = (peer: unknown, s: unknown): string => `${str(peer)}#${str(s)}`;
  const upAt = new Map<string, number>();
  const downAt = new Map<string, number>();
  const dialAt = new Map<string, number>();
  const sessionsOf = new Map<string, string[]>();
  for (const e of events) {
    if (e.k === 'dial') dialAt.set(sessionKey(e.peer, e.s), e.t);
    if (e.k !== 'sess') continue;
    const key = sessionKey(e.peer, e.s);
    if (e.phase === 'up') {
      upAt.set(key, e.t);
      const list = sessionsOf.get(str(e.peer)) ?? [];
      list.push(key);
      sessionsOf.set(str(e.peer), list);
    } else downAt.set(key, e.t);
  }

  /*
   * Which of two sessions of one peer the relay must treat as older. A session
   * that started dialling after the other was up registered after it (the relay
   * answers auth only once registered), so it is the newer one: the client's own
   * order, certain whenever the history records the dial. Only for sessions that
   * overlapped (two connections racing, or a history without dials) is the
   * relay's choice inferred: the one that ended first (it was replaced or
   * closed), else the one that came up first; auth order alone would not do, as
   * racing connections on two pods may authenticate in one order and register in
   * the other. Ending first alone misjudges two sessions closed in one burst.
   */
  const older = (x: string, y: string): boolean => {
    const dialX = dialAt.get(x);
    const dialY = dialAt.get(y);
    const upX = upAt.get(x);
    const upY = upAt.get(y);
    if (dialY !== undefined && upX !== undefined && dialY >= upX) return true;
    if (dialX !== undefined && upY !== undefined && dialX >= upY) return false;
    const dx = downAt.get(x) ?? Infinity;
    const dy = downAt.get(y) ?? Infinity;
    if (dx !== dy) return dx < dy;
    return (upAt.get(x) ?? 0) < (upAt.get(y) ?? 0);
  };

  // Per session, the newer session of its peer that came up first (memoised: histories are long).
  const firstNewerMemo = new Map<string, { key: string; up: number } | undefined>();
  const firstNewer = (key: string, peer: string): { key: string; up: number } | undefined => {
    if (firstNewerMemo.has(key)) return firstNewerMemo.get(key);
    let best: { key: string; up: number } | undefined;
    for (const other of sessionsOf.get(peer) ?? []) {
      if (other === key || !older(key, other)) continue;
      const up = upAt.get(other) ?? Infinity;
      if (!best || up < best.up) best = { key: other, up };
    }
    firstNewerMemo.set(key, best);
    return best;
  };

  // 1. Notices per (subscriber session, peer) alternate online, offline, online...
  const viewOpen = new Map<string, boolean>();
  // 2-4. Deliveries.
  const received = new Map<string, Event>();
  const lastReceiver = new Map<string, { key: string; t: number }>();
  let delivered = 0;
  let peakRss = 0;
  let exits = 0;

  for (const e of events) {
    switch (e.k) {
      case 'on':
      case 'off': {
        const key = `${sessionKey(e.peer, e.s)}>${str(e.of)}`;
        const open = viewOpen.get(key) ?? false;
        if (e.k === 'on' && open) flag('notify-order', e, `${key}: online again without an offline between`);
        if (e.k === 'off' && !open) flag('notify-order', e, `${key}: offline without a preceding online`);
        viewOpen.set(key, e.k === 'on');
        break;
      }
      case 'recv': {
        delivered++;
        if (str(e.dst) !== str(e.peer)) {
          flag(
            'misdelivery',
            e,
            `message ${str(e.from)}/${str(e.seq)} for ${str(e.dst)} reached ${str(e.peer)}`,
          );
        }
        const id = `${str(e.from)}/${str(e.seq)}`;
        const first = received.get(id);
        if (first) flag('duplicate', e, `message ${id} delivered again (first at line ${first.line})`);
        else received.set(id, e);
        // A sender's replaced session may still send until the relay has displaced it
        // (cross-pod, via Redis); past the bound after the newer one came up it must not.
        const sender = sessionKey(e.from, e.fs);
        const newer = firstNewer(sender, str(e.from));
        if (newer && e.t - newer.up > (inFault(e.t) ? boundMs : displaceMs)) {
          flag(
            'session-regress',
            e,
            `data from ${sender} ${Math.round(e.t - newer.up)} ms after the newer ${newer.key} came up`,
          );
        }
        // A session older (authenticated earlier) than one that already received must not receive.
        const me = sessionKey(e.peer, e.s);
        const before = lastReceiver.get(str(e.peer));
        if (before && before.key !== me && older(me, before.key)) {
          if (e.t - before.t > (inFault(e.t) ? boundMs : displaceMs)) {
            flag(
              'stale-session',
              e,
              `${me} received ${Math.round(e.t - before.t)} ms after the newer ${before.key} had`,
            );
          }
        } else if (before?.key !== me) lastReceiver.set(str(e.peer), { key: me, t: e.t });
        break;
      }
      case 'exit':
        exits++;
        if (e.scheduled !== true) {
          flag(
            'unexpected-exit',
            e,
            `pod ${str(e.pod)} exited (code ${str(e.code)}, signal ${str(e.signal)})`,
          );
        }
        break;
      case 'rss': {
        const bytes = Number(e.bytes);
        peakRss = Math.max(peakRss, bytes);
        if (bytes > rssBound) flag('rss', e, `pod ${str(e.pod)} RSS ${bytes} > bound ${rssBound}`);
        break;
      }
    }
  }

  // 5. Loss: a message never received is excused only by a fault window, or by
  // its sender's or receiver's session ending (or the receiver being between
  // sessions) within the bound of the send.
  const heal = events.find((e) => e.k === 'heal');
  const touched = (peer: string, t: number): boolean =>
    (sessionsOf.get(peer) ?? []).some((key) => {
      const up = upAt.get(key) ?? 0;
      const down = downAt.get(key);
      return (
        (up >= t - boundMs && up <= t + boundMs) ||
        (down !== undefined && down >= t - boundMs && down <= t + boundMs)
      );
    });
  let sent = 0;
  let lost = 0;
  let lostOutside = 0;
  for (const e of events) {
    if (e.k !== 'send') continue;
    sent++;
    const got = received.get(`${str(e.peer)}/${str(e.seq)}`);
    if (e.fin === true) {
      if (!got) {
        lost++;
        lostOutside++;
        flag('no-convergence', e, `final message ${str(e.peer)}->${str(e.to)} #${str(e.seq)} never arrived`);
      } else if (got.t - e.t > boundMs) {
        flag('no-convergence', got, `final message took ${Math.round(got.t - e.t)} ms > ${boundMs} ms`);
      }
      continue;
    }
    if (got) continue;
    lost++;
    if (e.t > endT - boundMs) continue;
    if (touched(str(e.peer), e.t) || touched(str(e.to), e.t)) continue;
    if (inFault(e.t)) continue;
    lostOutside++;
    flag('loss', e, `message ${str(e.peer)}->${str(e.to)} #${str(e.seq)} lost outside any fault window`);
  }

  // 6. Convergence: after the heal, every live session reports all partners open within the bound.
  let worst = 0;
  if (heal) {
    const live = new Set<string>();
    for (const [peer, keys] of sessionsOf) {
      const last = keys.at(-1);
      if (last && !downAt.has(last)) live.add(peer);
    }
    const ready = new Map<string, Event>();
    for (const e of events) if (e.k === 'ready' && e.t >= heal.t) ready.set(str(e.peer), e);
    for (const peer of live) {
      const r = ready.get(peer);
      if (!r) {
        flag('no-convergence', heal, `${peer} never reached all its partners after the heal`);
        continue;
      }
      worst = Math.max(worst, r.t - heal.t);
      if (r.t - heal.t > boundMs) {
        flag(
          'no-convergence',
          r,
          `${peer} reached its partners ${Math.round(r.t - heal.t)} ms after the heal`,
        );
      }
    }
  }

  checkRaces(events, upAt, downAt, inFault, displaceMs, flag);
  let fuzzFrames = 0;
  for (const e of events) {
    if (e.k === 'fuzz') fuzzFrames += Number(e.frames ?? 0);
    // A fuzzer's bystander may only lose its connection to a fault, never to the fuzz traffic.
    if (e.k === 'fuzz-bystander' && !inFault(e.t)) {
      flag(
        'bystander-closed',
        e,
        `fuzz bystander ${str(e.who)} on ${str(e.pod)} closed (code ${str(e.code)}) outside any fault window`,
      );
    }
  }

  violations.sort((a, b) => a.line - b.line);
  return {
    violations,
    stats: {
      sent,
      delivered,
      lost,
      lostOutsideFaults: lostOutside,
      faults,
      worstConvergenceMs: Math.round(worst),
      convergenceMsByFault: recoveryByFault(events, received, intervals),
      fuzzFrames,
      hostStalls,
      peakRssBytes: peakRss,
      exits,
    },
  };
}

/** The history as if no host stall had been recorded: what the verdict would be without that fault kind. */
export function withoutHostStalls(events: Event[]): Event[] {
  return events.filter((e) => !(e.k === 'fault' && e.kind === 'host-stall'));
}

/** Whether t lies in one of the windows: merged and searched, not scanned (histories are long). */
function windowTest(windows: [number, number][]): (t: number) => boolean {
  const merged: [number, number][] = [];
  for (const [a, b] of [...windows].sort((x, y) => x[0] - y[0])) {
    const last = merged.at(-1);
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else merged.push([a, b]);
  }
  return (t) => {
    let low = 0;
    let high = merged.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((merged[mid]?.[1] ?? 0) < t) low = mid + 1;
      else high = mid;
    }
    const window = merged[low];
    return window !== undefined && t >= window[0];
  };
}

/**
 * Per fault kind, how long traffic took to flow again: for every sender -> receiver pair that
 * lost a message sent during the fault, the time from the fault's end until the first message
 * of that pair sent after it arrived; the worst over pairs and faults of the kind.
 */
function recoveryByFault(
  events: Event[],
  received: Map<string, Event>,
  intervals: { kind: string; start: number; end: number }[],
): Record<string, number> {
  const byPair = new Map<string, { t: number; arrived: number | undefined }[]>();
  for (const e of events) {
    if (e.k !== 'send' || e.fin === true) continue;
    const key = `${str(e.peer)}>${str(e.to)}`;
    let sends = byPair.get(key);
    if (!sends) byPair.set(key, (sends = []));
    sends.push({ t: e.t, arrived: received.get(`${str(e.peer)}/${str(e.seq)}`)?.t });
  }
  const worst: Record<string, number> = {};
  for (const { kind, start, end } of intervals) {
    for (const sends of byPair.values()) {
      let i = firstAtOrAfter(sends, start);
      let broken = false;
      for (; i < sends.length && (sends[i]?.t ?? 0) <= end; i++) broken ||= sends[i]?.arrived === undefined;
      if (!broken) continue;
      for (; i < sends.length; i++) {
        const arrived = sends[i]?.arrived;
        if (arrived === undefined) continue;
        worst[kind] = Math.max(worst[kind] ?? 0, Math.round(arrived - end));
        break;
      }
    }
  }
  return worst;
}

function firstAtOrAfter(sends: { t: number }[], t: number): number {
  let low = 0;
  let high = sends.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((sends[mid]?.t ?? 0) < t) low = mid + 1;
    else high = mid;
  }
  return low;
}

/**
 * Two connections of one peer ID racing: exactly one wins. Once both have been up for the
 * displacement allowance (the bound inside a fault window), exactly one of them may still be
 * up, unless the driver itself closed one. Both up: the loser was not closed. Neither up
 * (and no fault): the race had no winner.
 */
function checkRaces(
  events: Event[],
  upAt: Map<string, number>,
  downAt: Map<string, number>,
  inFault: (t: number) => boolean,
  displaceMs: number,
  flag: (kind: ViolationKind, event: Event, message: string) => void,
): void {
  const boundOf = (t: number, boundMs: number): number => (inFault(t) ? boundMs : displaceMs);
  const run = events.find((e) => e.k === 'run');
  const boundMs = Number(run?.boundMs ?? 10_000);
  const closedByDriver = new Map<string, number>();
  for (const e of events) if (e.k === 'close') closedByDriver.set(`${str(e.peer)}#${str(e.s)}`, e.t);
  const endT = events.at(-1)?.t ?? 0;
  for (const e of events) {
    if (e.k !== 'race') continue;
    const pair = [`${str(e.peer)}#${str(e.a)}`, `${str(e.peer)}#${str(e.b)}`];
    const ups = pair.map((key) => upAt.get(key));
    if (ups.some((up) => up === undefined)) continue; // one never authenticated: no race happened
    const bothUp = Math.max(...(ups as number[]));
    const judgeAt = bothUp + boundOf(bothUp, boundMs);
    if (judgeAt > endT) continue;
    if (pair.some((key) => (closedByDriver.get(key) ?? Infinity) <= judgeAt)) continue;
    const alive = pair.filter((key) => (downAt.get(key) ?? Infinity) > judgeAt);
    if (alive.length === 2) {
      flag(
        'race',
        e,
        `${pair.join(' and ')} both still up ${Math.round(judgeAt - bothUp)} ms after the race`,
      );
      continue;
    }
    if (alive.length > 0) continue;
    // Neither is up: fine if a fault ended one, or a later session of the peer replaced the winner
    // (its client may hear its auth answer just after the relay closed the winner for it).
    const downs = pair.map((key) => downAt.get(key) ?? Infinity);
    if (downs.some((t) => inFault(t))) continue;
    const newest = Math.max(Number(e.a), Number(e.b));
    const replaced = [...upAt].some(([key, up]) => {
      const [peer, s] = key.split('#');
      return peer === str(e.peer) && Number(s) > newest && up <= Math.max(...downs) + displaceMs;
    });
    if (!replaced) flag('race', e, `neither ${pair.join(' nor ')} won the race`);
  }
}

/** The first violation with the history lines around it. */
export function explain(text: string, verdict: Verdict, context = 5): string {
  const first = verdict.violations[0];
  if (!first) return 'no violations';
  const lines = text.split('\n');
  const from = Math.max(0, first.line - 1 - context);
  const excerpt = lines
    .slice(from, first.line + context)
    .map((line, i) => `${from + i + 1 === first.line ? '>>' : '  '} ${from + i + 1}: ${line}`)
    .join('\n');
  return `${verdict.violations.length} violation(s); first: [${first.kind}] ${first.message}\n${excerpt}`;
}

export function checkFile(file: string): {
  verdict: Verdict;
  report: string;
  /** Violations by kind had the host stalls not been recorded (shows what they excused). */
  ignoringHostStalls: Record<string, number>;
} {
  const text = readFileSync(file, 'utf8');
  const events = parseHistory(text);
  const verdict = check(events);
  const ignoringHostStalls: Record<string, number> = {};
  if (verdict.stats.hostStalls.count > 0) {
    for (const violation of check(withoutHostStalls(events)).violations)
      ignoringHostStalls[violation.kind] = (ignoringHostStalls[violation.kind] ?? 0) + 1;
  }
  return { verdict, report: explain(text, verdict), ignoringHostStalls };
}

// As a program: tsx test/chaos/checker.ts <history.jsonl>
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: checker <history.jsonl>');
    process.exit(2);
  }
  const { verdict, report, ignoringHostStalls } = checkFile(file);
  console.log(JSON.stringify(verdict.stats));
  console.log(`violations had host stalls not been recorded: ${JSON.stringify(ignoringHostStalls)}`);
  console.log(report);
  process.exit(verdict.violations.length === 0 ? 0 : 1);
}
