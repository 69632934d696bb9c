/**
 * Output of every benchmark: a console table, a JSON file and an SVG chart in
 * bench/results/, each with the machine it ran on and the load meanwhile.
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { goVersion } from './loadgen.js';
import { ROOT, ensureDir } from './servers.js';

export const RESULTS_DIR = ensureDir(join(ROOT, 'bench', 'results'));

export function describeMachine(): Record<string, string | number> {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    go: goVersion(),
    date: new Date().toISOString(),
  };
}

/** Load averages, sampled during a benchmark to show how busy the machine was. */
export class LoadMonitor {
  readonly samples: number[] = [];
  readonly #timer: NodeJS.Timeout;

  constructor() {
    this.samples.push(loadavg()[0]!);
    this.#timer = setInterval(() => this.samples.push(loadavg()[0]!), 5_000);
    this.#timer.unref();
  }

  stop(): { start: number; max: number; end: number } {
    clearInterval(this.#timer);
    this.samples.push(loadavg()[0]!);
    return {
      start: this.samples[0]!,
      max: Math.max(...this.samples),
      end: this.samples[this.samples.length - 1]!,
    };
  }
}

/** Refuses to measure on a busy machine unless BENCH_IGNORE_LOAD=1 (waits up to BENCH_WAIT_QUIET seconds). */
export async function waitForQuiet(maxLoad = Number(process.env.BENCH_MAX_LOAD ?? 1.5)): Promise<void> {
  if (process.env.BENCH_IGNORE_LOAD === '1') return;
  const waitS = Number(process.env.BENCH_WAIT_QUIET ?? 0);
  const deadline = Date.now() + waitS * 1000;
  for (;;) {
    const load = loadavg()[0]!;
    if (load <= maxLoad) return;
    if (Date.now() >= deadline) {
      console.warn(
        `warning: 1-minute load average is ${load.toFixed(2)} (> ${maxLoad}); numbers will be noisy ` +
          `(BENCH_WAIT_QUIET=<s> waits for a quiet machine)`,
      );
      return;
    }
    await new Promise((r) => setTimeout(r, 5_000));
  }
}

export function writeJson(name: string, data: unknown): string {
  const path = join(RESULTS_DIR, `${name}.json`);
  writeFileSync(path, JSON.stringify(data, null, 2) + '\n');
  return path;
}

export function writeText(name: string, text: string): string {
  const path = join(RESULTS_DIR, name);
  writeFileSync(path, text);
  return path;
}

export function markdownTable(headers: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]): string => `| ${cells.join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

export function fmt(n: number | undefined | null, digits = 0): string {
  if (n === undefined || n === null || Number.isNaN(n)) return '–';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

const PALETTE = ['#2f6fb0', '#e07b39', '#3a9a5b', '#b8443f', '#7d5ba6', '#8c8c8c'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export interface BarPanel {
  title: string;
  unit: string;
  /** Group labels along the x axis. */
  groups: string[];
  /** One series per server: a value per group (undefined = not measured). */
  series: { name: string; values: (number | undefined)[] }[];
}

/** Grouped bar charts, stacked vertically, as one standalone SVG. */
export function barChartSvg(title: string, panels: BarPanel[], footnote = ''): string {
  const width = 860;
  const panelH = 260;
  const top = 40;
  const legendH = 28;
  const names = [...new Set(panels.flatMap((p) => p.series.map((s) => s.name)))];
  const height = top + legendH + panels.length * (panelH + 30) + 30;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${esc(title)}</text>`,
  ];
  names.forEach((n, i) => {
    const x = 70 + i * 190;
    out.push(`<rect x="${x}" y="${top}" width="12" height="12" fill="${PALETTE[i % PALETTE.length]}"/>`);
    out.push(`<text x="${x + 18}" y="${top + 11}">${esc(n)}</text>`);
  });
  panels.forEach((panel, pi) => {
    const y0 = top + legendH + pi * (panelH + 30);
    const plotTop = y0 + 24;
    const plotBottom = y0 + panelH - 20;
    const left = 70;
    const right = width - 20;
    const max = Math.max(
      1e-9,
      ...panel.series.flatMap((s) => s.values.filter((v): v is number => v !== undefined)),
    );
    const nice = niceCeil(max);
    out.push(
      `<text x="${left}" y="${y0 + 14}" font-weight="bold">${esc(panel.title)} (${esc(panel.unit)})</text>`,
    );
    for (let t = 0; t <= 4; t++) {
      const v = (nice * t) / 4;
      const y = plotBottom - ((plotBottom - plotTop) * t) / 4;
      out.push(`<line x1="${left}" x2="${right}" y1="${y}" y2="${y}" stroke="#ddd"/>`);
      out.push(`<text x="${left - 6}" y="${y + 4}" text-anchor="end" fill="#555">${esc(short(v))}</text>`);
    }
    const groupW = (right - left) / panel.groups.length;
    const barW = Math.min(40, (groupW - 20) / Math.max(1, panel.series.length));
    panel.groups.forEach((g, gi) => {
      const gx = left + gi * groupW + (groupW - barW * panel.series.length) / 2;
      panel.series.forEach((s) => {
        const v = s.values[gi];
        const color = PALETTE[names.indexOf(s.name) % PALETTE.length];
        const x = gx + panel.series.indexOf(s) * barW;
        if (v === undefined) return;
        const h = ((plotBottom - plotTop) * v) / nice;
        out.push(
          `<rect x="${x.toFixed(1)}" y="${(plotBottom - h).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${color}"><title>${esc(`${s.name}, ${g}: ${short(v)} ${panel.unit}`)}</title></rect>`,
        );
        out.push(
          `<text x="${(x + barW / 2 - 1).toFixed(1)}" y="${(plotBottom - h - 3).toFixed(1)}" text-anchor="middle" font-size="9" fill="#333">${esc(short(v))}</text>`,
        );
      });
      out.push(
        `<text x="${left + gi * groupW + groupW / 2}" y="${plotBottom + 15}" text-anchor="middle">${esc(g)}</text>`,
      );
    });
    out.push(`<line x1="${left}" x2="${right}" y1="${plotBottom}" y2="${plotBottom}" stroke="#333"/>`);
  });
  if (footnote)
    out.push(`<text x="10" y="${height - 10}" font-size="10" fill="#555">${esc(footnote)}</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function niceCeil(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function short(v: number): string {
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (Math.abs(v) >= 1e4) return `${(v / 1e3).toFixed(0)}k`;
  if (Math.abs(v) >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  if (Math.abs(v) >= 10) return v.toFixed(0);
  return v.toFixed(2);
}
