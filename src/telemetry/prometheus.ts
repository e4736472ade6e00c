import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorText } from '../core/error-text.js';
import { ValidationError } from '../core/errors.js';
import { assertKnownKeys, optionNames } from '../core/known-keys.js';
import {
  DURATION_BUCKETS,
  type HistogramSeries,
  type JobMetrics,
  type MetricsSnapshot,
  WAIT_BUCKETS,
} from './job-metrics.js';

/** PROMETHEUS_CONTENT_TYPE is the Content-Type of the Prometheus text exposition format 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** MetricsSource is what createMetricsHandler reads: a runtime (anything with its `metrics()`). */
export interface MetricsSource {
  metrics(): JobMetrics;
}

/** MetricsHandlerOptions are the options of createMetricsHandler. */
export interface MetricsHandlerOptions {
  /** runtime whose metrics are served (its registry starts counting when the handler is made). */
  runtime: MetricsSource;
}

const HANDLER_OPTION_NAMES = optionNames<MetricsHandlerOptions>({ runtime: true });

/**
 * createMetricsHandler returns a node:http request handler that serves the runtime's metrics in the
 * Prometheus text exposition format 0.0.4, whatever the path and method it is mounted at: transition
 * counters, attempt duration and queue wait histograms, and jobs per state (read from the database on
 * each scrape). It needs no OpenTelemetry. The runtime counts from the moment the handler is made.
 */
export function createMetricsHandler(
  options: MetricsHandlerOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  if (typeof options !== 'object' || options === null)
    throw new ValidationError('createMetricsHandler', 'an object { runtime }', options);
  assertKnownKeys(options, HANDLER_OPTION_NAMES, 'createMetricsHandler');
  if (typeof (options.runtime as Partial<MetricsSource> | null)?.metrics !== 'function')
    throw new ValidationError('createMetricsHandler.runtime', 'a jobchart runtime', options.runtime);
  const metrics = options.runtime.metrics();
  return (_req, res) => {
    metrics.snapshot().then(
      (snapshot) => {
        const body = renderPrometheus(snapshot);
        res.writeHead(200, {
          'Content-Type': PROMETHEUS_CONTENT_TYPE,
          'Content-Length': Buffer.byteLength(body),
        });
        res.end(body);
      },
      (error: unknown) => {
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end(`${errorText(error).message}\n`);
      },
    );
  };
}

/**
 * renderPrometheus writes a snapshot in the Prometheus text exposition format 0.0.4. Jobs per state
 * that could not be read are left out, with a comment saying why, so a scrape still gets the rest.
 */
export function renderPrometheus(snapshot: MetricsSnapshot): string {
  const lines: string[] = [
    '# HELP jobchart_transitions_total Job state transitions made by this runtime.',
    '# TYPE jobchart_transitions_total counter',
  ];
  for (const { labels, value } of snapshot.transitions) {
    lines.push(`jobchart_transitions_total${labelsOf(['from', 'to', 'task', 'queue'], labels)} ${value}`);
  }
  histogram(
    lines,
    'jobchart_attempt_duration_seconds',
    'Attempt duration, from the claim to the outcome this runtime wrote.',
    ['task', 'queue', 'outcome'],
    DURATION_BUCKETS,
    snapshot.attemptDuration,
  );
  histogram(
    lines,
    'jobchart_queue_wait_seconds',
    'Queue wait, from when the job was due to its claim by this runtime.',
    ['task', 'queue'],
    WAIT_BUCKETS,
    snapshot.queueWait,
  );
  lines.push('# HELP jobchart_jobs Jobs in each state, in the whole schema.', '# TYPE jobchart_jobs gauge');
  if (snapshot.jobs === null) {
    lines.push(`# jobs per state unavailable: ${oneLine(errorText(snapshot.jobsError).message)}`);
  } else {
    for (const [state, count] of Object.entries(snapshot.jobs)) {
      lines.push(`jobchart_jobs${labelsOf(['state'], [state])} ${count}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function histogram(
  lines: string[],
  name: string,
  help: string,
  names: readonly string[],
  bounds: readonly number[],
  series: readonly HistogramSeries[],
): void {
  lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
  for (const { labels, buckets, sum, count } of series) {
    let cumulative = 0;
    for (const [i, bucketCount] of buckets.entries()) {
      cumulative += bucketCount;
      const le = i < bounds.length ? String(bounds[i]) : '+Inf';
      lines.push(`${name}_bucket${labelsOf([...names, 'le'], [...labels, le])} ${cumulative}`);
    }
    const set = labelsOf(names, labels);
    lines.push(`${name}_sum${set} ${sum}`, `${name}_count${set} ${count}`);
  }
}

// labelsOf writes a label set, each value escaped as the format asks: backslash, quote, newline.
function labelsOf(names: readonly string[], values: readonly string[]): string {
  const pairs = names.map((name, i) => `${name}="${escapeLabel(values[i] ?? '')}"`);
  return `{${pairs.join(',')}}`;
}

/** escapeLabel escapes a label value for the exposition format: `\` as `\\`, `"` as `\"`, newline as `\n`. */
export function escapeLabel(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\\' ? '\\\\' : c === '"' ? '\\"' : '\\n'));
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}
