import type { Attributes, ObservableResult } from '@opentelemetry/api';
import type { JobState } from '../../machines/job.js';
import type { Clock } from '../core/clock.js';
import { targetOf } from '../core/transitions.js';
import type { TransitionEvent } from '../jobs/events.js';
import { DURATION_BUCKETS, type JobMetrics, NO_STATE, WAIT_BUCKETS } from './job-metrics.js';
import type { OpenTelemetryApi } from './otel-loader.js';
import { INSTRUMENTATION_NAME, MESSAGING_SYSTEM } from './otel-tracing.js';

/**
 * JOBS_REFRESH_MS is the least time between two reads of the jobs per state for the OpenTelemetry
 * gauge: a reader collecting often (or several readers) costs the database one GROUP BY per 5 s.
 */
export const JOBS_REFRESH_MS = 5_000;

// CLAIMED_STATE is where a claim leaves a job: a transition into it is a message consumed.
const CLAIMED_STATE = targetOf('CLAIM');

/**
 * bindMeter feeds jobchart's OpenTelemetry instruments (meter `jobchart`) from the runtime's own
 * registry, and returns false without doing anything when no SDK registered a meter provider:
 *  - `jobchart.job.transitions` (counter, {transition}): from, to state, task, queue;
 *  - `messaging.client.consumed.messages` (counter, {message}): jobs claimed by this runtime;
 *  - `messaging.process.duration` (histogram, s): attempt durations, with their outcome;
 *  - `jobchart.queue.wait.duration` (histogram, s): queue waits;
 *  - `jobchart.jobs` (observable gauge, {job}): jobs per state, read at most every JOBS_REFRESH_MS.
 */
export function bindMeter(api: OpenTelemetryApi, metrics: JobMetrics, clock: Clock): boolean {
  const meter = api.metrics.getMeter(INSTRUMENTATION_NAME);
  if (meter === api.createNoopMeter()) return false;
  const transitions = meter.createCounter('jobchart.job.transitions', {
    description: 'Job state transitions made by this runtime',
    unit: '{transition}',
  });
  const consumed = meter.createCounter('messaging.client.consumed.messages', {
    description: 'Jobs claimed by this runtime',
    unit: '{message}',
  });
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
  metrics.observe({
    transition({ job, from, to, event }: TransitionEvent) {
      transitions.add(1, {
        'messaging.system': MESSAGING_SYSTEM,
        'messaging.destination.name': job.queue,
        'jobchart.task': job.task,
        'jobchart.job.from_state': from ?? NO_STATE,
        'jobchart.job.to_state': to,
      });
      if (event === 'CLAIM' && to === CLAIMED_STATE) {
        consumed.add(1, {
          'messaging.system': MESSAGING_SYSTEM,
          'messaging.operation.name': 'claim',
          'messaging.destination.name': job.queue,
          'jobchart.task': job.task,
        });
      }
    },
    attemptDuration(seconds, task, queue, outcome) {
      duration.record(seconds, {
        'messaging.system': MESSAGING_SYSTEM,
        'messaging.operation.name': 'process',
        'messaging.destination.name': queue,
        'jobchart.task': task,
        'jobchart.job.outcome': outcome,
      });
    },
    queueWait(seconds, task, queue) {
      wait.record(seconds, {
        'messaging.system': MESSAGING_SYSTEM,
        'messaging.destination.name': queue,
        'jobchart.task': task,
      });
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
