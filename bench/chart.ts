/**
 * The results as a picture: a self-contained SVG of horizontal bar charts, one panel per workload
 * (drain at each concurrency, enqueue, latency p50/p99, history, memory), drawn by hand so the bench
 * needs no chart library. Each panel has its own scale, a labelled axis with gridlines, a legend and
 * the figure at the end of every bar; jobchart's rows are shaded.
 */
import { formatCount, formatValue, type Unit } from './format.js';
import { machineLine, type ResultsDocument } from './report.js';
import type { WorkloadResult } from './workloads.js';

const WIDTH = 980;
const PLOT_LEFT = 270;
const PLOT_WIDTH = 560;
const BAR_HEIGHT = 14;
const BAR_GAP = 2;
const ROW_GAP = 12;
const COLORS = ['#4e79a7', '#f28e2b', '#59a14f'];

/** Panel is one bar chart: rows of bars, one bar per series. */
interface Panel {
  title: string;
  axis: string;
  unit: Unit;
  series: string[];
  rows: { label: string; values: (number | null)[]; highlight: boolean }[];
}

/** renderChart draws the results document as an SVG string. */
export function renderChart(document: ResultsDocument): string {
  const panels = document.workloads.map(panelOf);
  const parts: string[] = [];
  let y = 0;
  parts.push(
    text(16, 28, 'jobchart benchmark', { size: 20, weight: 'bold' }),
    text(
      16,
      48,
      `${document.mode} run, median of ${document.sizes.rounds} round${document.sizes.rounds === 1 ? '' : 's'}; every system in a fresh database`,
      { size: 12, color: '#444' },
    ),
    text(16, 64, machineLine(document.machine), { size: 12, color: '#444' }),
  );
  y = 80;
  for (const panel of panels) {
    const drawn = drawPanel(panel, y);
    parts.push(drawn.svg);
    y += drawn.height;
  }
  const height = y + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif">`,
    '<title>jobchart benchmark results</title>',
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

/** AXES says, per workload, which figures its panel draws (in this order) and what its axis shows. */
const AXES: Record<WorkloadResult['id'], { axis: string; keys?: string[] }> = {
  drain: { axis: 'jobs per second (higher is better)' },
  latency: { axis: 'milliseconds from enqueue call to handler start (lower is better)' },
  enqueue: { axis: 'jobs per second (higher is better)' },
  history: { axis: 'jobs per second drained (higher is better)' },
  cleaning: { axis: 'jobs per second drained (higher is better)', keys: ['jobsPerSecond'] },
  memory: { axis: 'MiB resident (lower is better)', keys: ['startRssMiB', 'peakRssMiB'] },
};

/** panelOf turns a workload's medians into a panel. */
function panelOf(workload: WorkloadResult): Panel {
  const spec = AXES[workload.id];
  const metrics = spec.keys
    ? spec.keys.flatMap((key) => workload.metrics.filter((metric) => metric.key === key))
    : workload.metrics.filter((metric) => !metric.detail);
  return {
    title: workload.title,
    axis: spec.axis,
    unit: metrics[0]?.unit ?? 'jobs/s',
    series: metrics.map((metric) => metric.legend ?? metric.label),
    rows: workload.entries.map((entry) => ({
      label: entry.label,
      values: metrics.map((metric) => workload.medians[entry.id]?.[metric.key] ?? null),
      highlight: entry.id === 'jobchart',
    })),
  };
}

/** drawPanel draws a panel with its top at `top` and returns the SVG and the height it took. */
function drawPanel(panel: Panel, top: number): { svg: string; height: number } {
  const bars = Math.max(1, panel.rows[0]?.values.length ?? 1);
  const groupHeight = bars * BAR_HEIGHT + (bars - 1) * BAR_GAP;
  const plotTop = top + 40;
  const plotHeight = panel.rows.length * (groupHeight + ROW_GAP) + ROW_GAP;
  const plotBottom = plotTop + plotHeight;
  const values = panel.rows.flatMap((row) => row.values.filter((value): value is number => value !== null));
  const ticks = niceTicks(Math.max(0, ...values));
  const domain = ticks[ticks.length - 1] ?? 1;
  const scale = (value: number) => (value / domain) * PLOT_WIDTH;
  const out: string[] = [text(16, top + 22, panel.title, { size: 15, weight: 'bold' })];

  // Legend, on the title line at the right, only when there is more than one series.
  if (panel.series.length > 1) {
    let x = WIDTH - 16;
    for (let i = panel.series.length - 1; i >= 0; i--) {
      const name = panel.series[i] as string;
      const width = name.length * 7 + 30;
      x -= width;
      out.push(
        `<rect x="${x}" y="${top + 12}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`,
        text(x + 16, top + 22, name, { size: 12 }),
      );
    }
  }

  // Gridlines and tick labels.
  for (const tick of ticks) {
    const x = PLOT_LEFT + scale(tick);
    out.push(
      `<line x1="${x}" y1="${plotTop}" x2="${x}" y2="${plotBottom}" stroke="${tick === 0 ? '#888' : '#e3e3e3'}"/>`,
      text(x, plotBottom + 14, tickLabel(tick), { size: 11, anchor: 'middle', color: '#555' }),
    );
  }
  out.push(
    `<line x1="${PLOT_LEFT}" y1="${plotBottom}" x2="${PLOT_LEFT + PLOT_WIDTH}" y2="${plotBottom}" stroke="#888"/>`,
    text(PLOT_LEFT + PLOT_WIDTH / 2, plotBottom + 32, panel.axis, {
      size: 12,
      anchor: 'middle',
      color: '#333',
    }),
  );

  // Rows: a shaded band for jobchart, the label, one bar per series with its figure.
  panel.rows.forEach((row, r) => {
    const rowTop = plotTop + ROW_GAP + r * (groupHeight + ROW_GAP);
    if (row.highlight) {
      out.push(
        `<rect x="8" y="${rowTop - ROW_GAP / 2}" width="${WIDTH - 16}" height="${groupHeight + ROW_GAP}" fill="#eef3f9"/>`,
      );
    }
    out.push(
      text(PLOT_LEFT - 10, rowTop + groupHeight / 2 + 4, row.label, {
        size: 12,
        anchor: 'end',
        weight: row.highlight ? 'bold' : 'normal',
      }),
    );
    row.values.forEach((value, s) => {
      const barTop = rowTop + s * (BAR_HEIGHT + BAR_GAP);
      if (value === null) {
        out.push(text(PLOT_LEFT + 6, barTop + BAR_HEIGHT - 3, 'n/a', { size: 11, color: '#a00' }));
        return;
      }
      const width = Math.max(1, scale(value));
      out.push(
        `<rect x="${PLOT_LEFT}" y="${barTop}" width="${width.toFixed(1)}" height="${BAR_HEIGHT}" fill="${COLORS[s % COLORS.length]}"/>`,
        text(PLOT_LEFT + width + 5, barTop + BAR_HEIGHT - 3, formatValue(value, panel.unit), { size: 11 }),
      );
    });
  });
  return { svg: `<g>\n${out.join('\n')}\n</g>`, height: plotBottom - top + 52 };
}

/** niceTicks covers [0, max] with about five round steps (1, 2 or 5 times a power of ten). */
export function niceTicks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const rough = max / 5;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = ([1, 2, 5, 10].find((m) => m * power >= rough) ?? 10) * power;
  const ticks: number[] = [];
  for (let i = 0; i * step < max + step * 1e-9; i++) ticks.push(Number((i * step).toPrecision(12)));
  const last = ticks[ticks.length - 1] as number;
  if (last < max) ticks.push(Number((last + step).toPrecision(12)));
  return ticks;
}

/** tickLabel writes a tick compactly: 20k for 20,000, 0.5 for a half. */
function tickLabel(value: number): string {
  if (value >= 10_000) return `${formatCount(value / 1000)}k`;
  if (Number.isInteger(value)) return formatCount(value);
  return String(Number(value.toFixed(3)));
}

/** text makes an SVG text element with escaped content. */
function text(
  x: number,
  y: number,
  content: string,
  style: { size: number; weight?: string; anchor?: string; color?: string },
): string {
  const attributes = [
    `x="${round(x)}"`,
    `y="${round(y)}"`,
    `font-size="${style.size}"`,
    style.weight && style.weight !== 'normal' ? `font-weight="${style.weight}"` : '',
    style.anchor ? `text-anchor="${style.anchor}"` : '',
    `fill="${style.color ?? '#111'}"`,
  ].filter(Boolean);
  return `<text ${attributes.join(' ')}>${escapeXml(content)}</text>`;
}

function round(value: number): string {
  return String(Math.round(value * 10) / 10);
}

/** escapeXml makes text safe inside an SVG element or attribute. */
function escapeXml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
