import type { Attributes, ObservableResult } from '@opentelemetry/api';
import type { JobState } from '../../machines/job.js';
import type { Clock } from '../core/clock.js';
import { targetOf } from '../core/transitions.js';
import { DURATION_BUCKETS, type HistogramSeries, type JobMetrics, WAIT_BUCKETS } from './job-metrics.js';
import type { OpenTelemetryApi } from './otel-loader.js';
import { INSTRUMENTATION_NAME, MESSAGING_SYSTEM } from './otel-tracing.js';

/**
 * JOBS_REFRESH_MS is the least time between two reads of the jobs per state for the OpenTelemetry
 * gauge: a reader collecting often (or several readers) reads the counts snapshot once per 5 s.
 */
export const JOBS_REFRESH_MS = 5_000;

// CLAIMED_STATE is where a claim leaves a job: a transition into it is a message consumed (the
// machine's CLAIM is the only event that enters it).
const CLAIMED_STATE = targetOf('CLAIM');

/**
 * bindMeter feeds jobchart's OpenTelemetry instruments (meter `jobchart`) from the runtime's own
 * registry, and returns false without doing anything when no SDK registered a meter provider:
 *  - `jobchart.job.transitions` (observable counter, {transition}): from, to state, task, queue;
 *  - `messaging.client.consumed.messages` (observable counter, {message}): jobs claimed here;
 *  - `messaging.process.duration` (histogram, s): attempt durations, with their outcome;
 *  - `jobchart.queue.wait.duration` (histogram, s): queue waits;
 *  - `jobchart.jobs` (observable gauge, {job}): jobs per state, read at most every JOBS_REFRESH_MS.
 * The counters are observed from the registry's totals when the SDK collects, so they cost nothing
 * per job; the histograms are recorded as the registry observes, with attributes made once a series.
 */
export function bindMeter(api: OpenTelemetryApi, metrics: JobMetrics, clock: Clock): boolean {
  const meter = api.metrics.getMeter(INSTRUMENTATION_NAME);
  if (meter === api.createNoopMeter()) return false;
  const transitions = meter.createObservableCounter('jobchart.job.transitions', {
    description: 'Job state transitions made by this runtime',
    unit: '{transition}',
  });
  const consumed = meter.createObservableCounter('messaging.client.consumed.messages', {
    description: 'Jobs claimed by this runtime',
    unit: '{message}',
  });
  meter.addBatchObservableCallback(
    (result) => {
      const claimed = new Map<string, { attributes: Attributes; value: number }>();
      for (const { labels, value } of metrics.transitionSeries()) {
        const [from, to, task, queue] = labels as [string, JobState, string, string];
        result.observe(transitions, value, {
          'messaging.system': MESSAGING_SYSTEM,
          'messaging.destination.name': queue,
          'jobchart.task': task,
          'jobchart.job.from_state': from,
          'jobchart.job.to_state': to,
        });
        if (to !== CLAIMED_STATE) continue;
        const key = `${task}\u0000${queue}`;
        const entry = claimed.get(key);
        if (entry) entry.value += value;
        else {
          const attributes = {
            'messaging.system': MESSAGING_SYSTEM,
            'messaging.operation.name': 'claim',
            'messaging.destination.name': queue,
            'jobchart.task': task,
          };
          claimed.set(key, { attributes, value });
        }
      }
      for (const { attributes, value } of claimed.values()) result.observe(consumed, value, attributes);
    },
    [transitions, consumed],
  );
  const duration = meter.createHistogram('messaging.process.duration', {
    description: 'Attempt duration, from the claim to the outcome this runtime wrote',
    unit: 's',
    advice: { explicitBucketBoundaries: [...DURATION_BUCKETS] },
  });
  const wait = meter.createHistogram('jobchart.queue.wait.duration', {
    description: 'Queue wait, from when the job was due to its claim by this runtime',
    unit: 's',
    advice: { explicitBucketBoundaries: [...WAIT_BUCKETS] },
  });
  const jobs = meter.createObservableGauge('jobchart.jobs', {
    description: 'Jobs in each state, in the whole schema',
    unit: '{job}',
  });
  jobs.addCallback(jobsReader(metrics, clock));
  // attributesOf keeps each histogram series' attributes, made on its first observation.
  const attributesOf = new WeakMap<HistogramSeries, Attributes>();
  metrics.observe({
    attemptDuration(seconds, series) {
      let attributes = attributesOf.get(series);
      if (attributes === undefined) {
        const [task, queue, outcome] = series.labels as [string, string, string];
        attributes = {
          'messaging.system': MESSAGING_SYSTEM,
          'messaging.operation.name': 'process',
          'messaging.destination.name': queue,
          'jobchart.task': task,
          'jobchart.job.outcome': outcome,
        };
        attributesOf.set(series, attributes);
      }
      duration.record(seconds, attributes);
    },
    queueWait(seconds, series) {
      let attributes = attributesOf.get(series);
      if (attributes === undefined) {
        const [task, queue] = series.labels as [string, string];
        attributes = {
          'messaging.system': MESSAGING_SYSTEM,
          'messaging.destination.name': queue,
          'jobchart.task': task,
        };
        attributesOf.set(series, attributes);
      }
      wait.record(seconds, attributes);
    },
  });
  return true;
}

// jobsReader is the gauge's callback. The API lets an observable callback return a promise, which the
// SDK awaits within its collection: the counts are read then, unless read less than JOBS_REFRESH_MS
// ago (the last counts are observed again); a failed read observes nothing.
function jobsReader(metrics: JobMetrics, clock: Clock) {
  let last: { at: number; counts: Promise<Partial<Record<JobState, number>>> } | null = null;
  return async (result: ObservableResult<Attributes>): Promise<void> => {
    const now = clock.now().getTime();
    if (last === null || now - last.at >= JOBS_REFRESH_MS || now < last.at) {
      last = { at: now, counts: metrics.readCounts() };
    }
    let counts: Partial<Record<JobState, number>>;
    try {
      counts = await last.counts;
    } catch {
      last = null;
      return;
    }
    for (const [state, count] of Object.entries(counts)) {
      result.observe(count, { 'messaging.system': MESSAGING_SYSTEM, 'jobchart.job.state': state });
    }
  };
}
