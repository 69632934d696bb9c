import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

export interface SelfTime {
  fn: string;
  where: string;
  ms: number;
  share: number;
}

/** Self time by function from a V8 .cpuprofile (node --cpu-prof), largest first. */
export function selfTimeByFunction(
  path: string,
  top = 25,
): { totalMs: number; idleShare: number; rows: SelfTime[] } {
  const p = JSON.parse(readFileSync(path, 'utf8')) as {
    nodes: ProfileNode[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0;
    selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + dt);
  }
  const agg = new Map<string, SelfTime>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    const fn = n.callFrame.functionName || '(anonymous)';
    const url = n.callFrame.url.replace(/^file:\/\//, '').replace(/.*\/(dist|node_modules)\//, '$1/');
    const where = url ? `${url}:${n.callFrame.lineNumber + 1}` : '';
    total += us;
    if (fn === '(idle)') idle += us;
    const key = `${fn}@${where}`;
    const e = agg.get(key) ?? { fn, where, ms: 0, share: 0 };
    e.ms += us / 1000;
    agg.set(key, e);
  }
  const rows = [...agg.values()].sort((a, b) => b.ms - a.ms).slice(0, top);
  for (const r of rows) {
    r.share = Number(((r.ms * 1000) / total).toFixed(4));
    r.ms = Number(r.ms.toFixed(1));
  }
  return { totalMs: Number((total / 1000).toFixed(1)), idleShare: Number((idle / total).toFixed(3)), rows };
}

/** Self time grouped by where it is spent: our code, ws, Node internals, GC, syscalls. */
export function selfTimeByArea(path: string): Record<string, number> {
  const all = selfTimeByFunction(path, 100_000);
  const busy = all.rows.filter((r) => r.fn !== '(idle)');
  const total = busy.reduce((s, r) => s + r.ms, 0);
  const areas: Record<string, number> = {};
  for (const r of busy) {
    const area =
      r.fn === '(garbage collector)'
        ? 'GC'
        : r.fn === '(program)'
          ? 'V8/native (program)'
          : r.where === ''
            ? `native: ${r.fn}`
            : r.where.includes('node_modules/ws/lib/receiver')
              ? 'ws receiver'
              : r.where.includes('node_modules/ws/lib/sender') ||
                  r.where.includes('node_modules/ws/lib/websocket.js')
                ? 'ws sender/websocket'
                : r.where.includes('node_modules/')
                  ? 'other dependencies'
                  : r.where.startsWith('node:')
                    ? 'Node core JS (streams, net, events, buffer)'
                    : 'our code';
    areas[area] = (areas[area] ?? 0) + r.ms;
  }
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(areas).sort((a, b) => b[1] - a[1]))
    out[k] = Number(((v / total) * 100).toFixed(1));
  return out;
}
