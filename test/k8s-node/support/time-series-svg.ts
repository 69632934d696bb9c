/**
 * Line charts over time, stacked vertically, as one standalone SVG (bench/lib/report.ts draws
 * bar charts only; this is its counterpart for a run recorded every few seconds).
 */

export interface TimePanel {
  title: string;
  unit: string;
  /** One line per series: [seconds since start, value] points (a missing point leaves a gap). */
  series: { name: string; points: [number, number][] }[];
  /** Vertical markers (e.g. "load stopped") at seconds since start. */
  markers?: { at: number; label: string }[];
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceCeil(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function timeSeriesSvg(title: string, panels: TimePanel[], footnote = ''): string {
  const width = 860;
  const panelH = 200;
  const top = 40;
  const left = 70;
  const right = width - 150;
  const height = top + panels.length * (panelH + 20) + 30;
  const end = Math.max(1, ...panels.flatMap((p) => p.series.flatMap((s) => s.points.map(([t]) => t))));
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${esc(title)}</text>`,
  ];
  panels.forEach((panel, pi) => {
    const y0 = top + pi * (panelH + 20);
    const plotTop = y0 + 24;
    const plotBottom = y0 + panelH - 20;
    const max = niceCeil(Math.max(1e-9, ...panel.series.flatMap((s) => s.points.map(([, v]) => v))));
    const x = (t: number): number => left + ((right - left) * t) / end;
    const y = (v: number): number => plotBottom - ((plotBottom - plotTop) * v) / max;
    out.push(
      `<text x="${left}" y="${y0 + 14}" font-weight="bold">${esc(panel.title)} (${esc(panel.unit)})</text>`,
    );
    for (let i = 0; i <= 4; i++) {
      const v = (max * i) / 4;
      out.push(`<line x1="${left}" x2="${right}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
      out.push(
        `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end" fill="#555">${Number(v.toFixed(2))}</text>`,
      );
    }
    for (const marker of panel.markers ?? []) {
      out.push(
        `<line x1="${x(marker.at)}" x2="${x(marker.at)}" y1="${plotTop}" y2="${plotBottom}" stroke="#999" stroke-dasharray="4 3"/>`,
        `<text x="${x(marker.at) + 3}" y="${plotTop + 10}" font-size="10" fill="#555">${esc(marker.label)}</text>`,
      );
    }
    panel.series.forEach((s, si) => {
      const color = PALETTE[si % PALETTE.length]!;
      const d = s.points
        .map(([t, v], i) => `${i === 0 ? 'M' : 'L'}${x(t).toFixed(1)},${y(v).toFixed(1)}`)
        .join(' ');
      if (d) out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.5"/>`);
      out.push(
        `<rect x="${right + 12}" y="${plotTop + si * 16}" width="10" height="10" fill="${color}"/>`,
        `<text x="${right + 26}" y="${plotTop + si * 16 + 9}" font-size="11">${esc(s.name)}</text>`,
      );
    });
    out.push(`<line x1="${left}" x2="${right}" y1="${plotBottom}" y2="${plotBottom}" stroke="#333"/>`);
    for (let i = 0; i <= 6; i++) {
      const t = (end * i) / 6;
      out.push(
        `<text x="${x(t)}" y="${plotBottom + 14}" text-anchor="middle" fill="#555">${Math.round(t)} s</text>`,
      );
    }
  });
  if (footnote)
    out.push(`<text x="10" y="${height - 10}" font-size="10" fill="#555">${esc(footnote)}</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
