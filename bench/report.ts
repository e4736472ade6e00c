/**
 * The benchmark's outputs in words and numbers: a markdown table per workload (medians and
 * within-run ratios) for the terminal or a README, and the JSON document with the machine, the
 * configuration, every raw run and the summaries, written with the chart under bench/results.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { formatRatio, formatValue } from './format.js';
import type { MachineInfo } from './machine.js';
import type { Mode, Sizes } from './options.js';
import type { WorkloadResult } from './workloads.js';

/** ResultsDocument is what bench/results/<name>.json holds. */
export interface ResultsDocument {
  mode: Mode;
  sizes: Sizes;
  machine: MachineInfo;
  /** versions of the systems' packages as installed. */
  versions: Record<string, string>;
  workloads: WorkloadResult[];
}

/** RESULTS_DIR is bench/results in the source tree (this file runs from dist/bench). */
export const RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url));

/** machineLine summarises the machine in one line, for the table header and the chart. */
export function machineLine(machine: MachineInfo): string {
  return [
    `${machine.cpuCount} × ${machine.cpuModel}`,
    `${machine.totalMemoryGiB} GiB`,
    `Node ${machine.node}`,
    `PostgreSQL ${machine.postgres}`,
    machine.date.slice(0, 10),
  ].join(', ');
}

/** renderMarkdown writes every workload as a heading, a table and its notes. */
export function renderMarkdown(document: ResultsDocument): string {
  const rounds = document.sizes.rounds;
  const lines = [
    `## jobchart benchmark (${document.mode}; median of ${rounds} round${rounds === 1 ? '' : 's'})`,
    '',
    machineLine(document.machine),
  ];
  for (const workload of document.workloads) lines.push('', ...renderWorkload(workload, rounds));
  return lines.join('\n');
}

function renderWorkload(workload: WorkloadResult, rounds: number): string[] {
  const { metrics, ratio } = workload;
  const ratioColumns = ratio
    ? metrics
        .filter((metric) => !metric.detail)
        .map((metric) => ({
          metric,
          label: metrics.length > 1 ? `${ratio.label} (${metric.label})` : ratio.label,
        }))
    : [];
  const header = [
    'system',
    ...metrics.map((metric) => metric.label),
    ...ratioColumns.map((column) => column.label),
  ];
  const lines = [
    `### ${workload.title}`,
    '',
    workload.description,
    '',
    `| ${header.join(' | ')} |`,
    `| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
  ];
  const failures: string[] = [];
  for (const entry of workload.entries) {
    const medians = workload.medians[entry.id] ?? {};
    const ratios = workload.ratios[entry.id] ?? {};
    const failed = workload.runs.filter((run) => run.entry === entry.id && run.error);
    for (const run of failed) failures.push(`round ${run.round + 1}, ${entry.label}: ${run.error}`);
    const label = failed.length > 0 ? `${entry.label} (failed ${failed.length}/${rounds})` : entry.label;
    const cells = [
      label,
      ...metrics.map((metric) => formatValue(medians[metric.key], metric.unit)),
      ...ratioColumns.map(({ metric }) => formatRatio(ratios[metric.key])),
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  for (const note of workload.notes) lines.push('', note);
  for (const failure of failures) lines.push('', `Failed: ${failure}`);
  return lines;
}

/** writeResults writes `<name>.json` and `<name>.svg` under bench/results and returns their paths. */
export async function writeResults(name: string, document: ResultsDocument, svg: string): Promise<string[]> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const json = `${RESULTS_DIR}${name}.json`;
  const chart = `${RESULTS_DIR}${name}.svg`;
  await writeFile(json, `${JSON.stringify(document, null, 2)}\n`);
  await writeFile(chart, svg);
  return [json, chart];
}
