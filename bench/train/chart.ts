// The training bench's chart: AU (0–100 %, a dashed line at the 90 % bar) against emulated
// accelerators (log2 axis), one line per data path. Drawn as an SVG string, rasterised with
// resvg so no browser or canvas package is needed; DejaVu Sans ships with Debian.
import { Resvg } from "@resvg/resvg-js";
import type { PathResult } from "./types.ts";

export interface ChartInput {
  title: string;
  subtitle: string;
  paths: readonly PathResult[];
}

const WIDTH = 1000;
const HEIGHT = 600;
const PLOT = { left: 80, right: 760, top: 80, bottom: 520 };
// Distinguishable on white and for the common colour-vision deficiencies (Okabe–Ito plus greys).
const COLOURS = ["#0072B2", "#56B4E9", "#D55E00", "#E69F00", "#CC79A7", "#009E73", "#7F3C8D", "#000000", "#999999", "#B8860B"];

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** One point per accelerator count; a count run twice (a borderline fail re-run) shows its better AU, as the sweep kept. */
function points(path: PathResult): Array<{ accelerators: number; au: number }> {
  const best = new Map<number, number>();
  for (const r of path.runs) best.set(r.accelerators, Math.max(best.get(r.accelerators) ?? 0, r.au));
  return [...best.entries()].sort((a, b) => a[0] - b[0]).map(([accelerators, au]) => ({ accelerators, au }));
}

export function chartSvg(input: ChartInput): string {
  const measured = input.paths.filter((p) => p.runs.length > 0);
  const maxCount = Math.max(2, ...measured.flatMap((p) => p.runs.map((r) => r.accelerators)));
  const maxLog = Math.ceil(Math.log2(maxCount));
  // Half a doubling of margin each side, so points at 1 accelerator sit inside the frame, not on it.
  const x = (count: number): number => PLOT.left + ((PLOT.right - PLOT.left) * (Math.log2(count) + 0.5)) / (maxLog + 1);
  const y = (au: number): number => PLOT.bottom - (PLOT.bottom - PLOT.top) * Math.min(1, Math.max(0, au));
  const parts: string[] = [];
  parts.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`);
  parts.push(`<text x="${WIDTH / 2}" y="32" font-size="20" font-weight="bold" text-anchor="middle">${escapeXml(input.title)}</text>`);
  parts.push(`<text x="${WIDTH / 2}" y="56" font-size="13" fill="#444" text-anchor="middle">${escapeXml(input.subtitle)}</text>`);
  for (let pct = 0; pct <= 100; pct += 10) {
    const yy = y(pct / 100);
    parts.push(`<line x1="${PLOT.left}" x2="${PLOT.right}" y1="${yy}" y2="${yy}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${PLOT.left - 8}" y="${yy + 4}" font-size="12" text-anchor="end">${pct}%</text>`);
  }
  for (let e = 0; e <= maxLog; e++) {
    const xx = x(2 ** e);
    parts.push(`<line x1="${xx}" x2="${xx}" y1="${PLOT.top}" y2="${PLOT.bottom}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${xx}" y="${PLOT.bottom + 18}" font-size="12" text-anchor="middle">${2 ** e}</text>`);
  }
  parts.push(`<rect x="${PLOT.left}" y="${PLOT.top}" width="${PLOT.right - PLOT.left}" height="${PLOT.bottom - PLOT.top}" fill="none" stroke="#333"/>`);
  parts.push(`<line x1="${PLOT.left}" x2="${PLOT.right}" y1="${y(0.9)}" y2="${y(0.9)}" stroke="#c00" stroke-width="1.5" stroke-dasharray="8 5"/>`);
  parts.push(`<text x="${PLOT.left + 6}" y="${y(0.9) + 16}" font-size="12" fill="#c00">AU 90% (MLPerf Storage bar)</text>`);
  parts.push(`<text x="${(PLOT.left + PLOT.right) / 2}" y="${PLOT.bottom + 44}" font-size="14" text-anchor="middle">emulated accelerators (log2)</text>`);
  parts.push(`<text x="24" y="${(PLOT.top + PLOT.bottom) / 2}" font-size="14" text-anchor="middle" transform="rotate(-90 24 ${(PLOT.top + PLOT.bottom) / 2})">accelerator utilisation (AU)</text>`);
  input.paths.forEach((path, i) => {
    const colour = COLOURS[i % COLOURS.length] ?? "#000";
    // Cold paths dashed: lines that coincide (every path at full AU for one accelerator) stay distinguishable.
    const dash = path.name.endsWith("-cold") ? ' stroke-dasharray="7 4"' : "";
    const pts = points(path);
    if (pts.length > 0) {
      const d = pts.map((p, j) => `${j === 0 ? "M" : "L"}${x(p.accelerators).toFixed(1)},${y(p.au).toFixed(1)}`).join(" ");
      parts.push(`<path d="${d}" fill="none" stroke="${colour}" stroke-width="2.5"${dash}/>`);
      for (const p of pts) parts.push(`<circle cx="${x(p.accelerators).toFixed(1)}" cy="${y(p.au).toFixed(1)}" r="${pts.length === 1 ? 5 : 3.5}" fill="${colour}"/>`);
    }
    const ly = PLOT.top + 10 + i * 24;
    const label = path.skipped ? `${path.name} (skipped)` : `${path.name}: ${path.acceleratorsSupported}`;
    parts.push(`<line x1="${PLOT.right + 20}" x2="${PLOT.right + 48}" y1="${ly}" y2="${ly}" stroke="${colour}" stroke-width="3"${path.skipped ? ' stroke-dasharray="2 3"' : dash}/>`);
    parts.push(`<text x="${PLOT.right + 54}" y="${ly + 4}" font-size="13">${escapeXml(label)}</text>`);
  });
  parts.push(`<text x="${PLOT.right + 20}" y="${PLOT.top + 10 + input.paths.length * 24 + 8}" font-size="11" fill="#666">number: accelerators at AU ≥ 90%</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="DejaVu Sans, sans-serif">${parts.join("")}</svg>`;
}

export function chartPng(input: ChartInput): Buffer {
  const resvg = new Resvg(chartSvg(input), { font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" }, background: "#ffffff" });
  return resvg.render().asPng();
}
