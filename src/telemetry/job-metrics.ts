import type { JobState } from '../../machines/job.js';
import { targetOf } from '../core/transitions.js';
import type { RuntimeEvents, TransitionEvent } from '../jobs/events.js';

/**
 * DURATION_BUCKETS are the upper bounds (seconds) of the attempt duration histogram: the boundaries
 * OpenTelemetry's messaging conventions advise for durations, so both exports bucket alike.
 */
export const DURATION_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];

/**
 * WAIT_BUCKETS are the upper bounds (seconds) of the queue wait histogram: the duration buckets, then
 * up to an hour, since a job may wait behind a backlog far longer than a handler runs.
 */
export const WAIT_BUCKETS: readonly number[] = [...DURATION_BUCKETS, 30, 60, 300, 900, 3600];

/** NO_STATE stands for the `from` of a job just enqueued (it had no state before). */
export const NO_STATE = 'none';

/** CountSeries is one labelled counter value. */
export interface CountSeries {
  labels: readonly string[];
  value: number;
}

/** HistogramSeries is one labelled histogram: counts per bucket (not cumulative), then +Inf last. */
export interface HistogramSeries {
  labels: readonly string[];
  buckets: number[];
  sum: number;
  count: number;
}

/** MetricsSnapshot is what a JobMetrics holds at one moment, for an exposition to render. */
export interface MetricsSnapshot {
  /** transitions are keyed by [from, to, task, queue]; `from` is NO_STATE for an enqueue. */
  transitions: readonly CountSeries[];
  /** attemptDuration is keyed by [task, queue, outcome], in seconds, bounded by DURATION_BUCKETS. */
  attemptDuration: readonly HistogramSeries[];
  /** queueWait is keyed by [task, queue], in seconds, bounded by WAIT_BUCKETS. */
  queueWait: readonly HistogramSeries[];
  /** jobs counts the jobs per state, or is null when they could not be read (the error is in jobsError). */
  jobs: Partial<Record<JobState, number>> | null;
  jobsError: unknown;
}

/**
 * MetricsObserver hears each histogram observation JobMetrics makes, as it makes it, with the series
 * it went into (the OpenTelemetry histograms are fed this way; its counters read `transitionSeries`).
 */
export interface MetricsObserver {
  /** attemptDuration: `series.labels` are [task, queue, outcome]. */
  attemptDuration(seconds: number, series: HistogramSeries): void;
  /** queueWait: `series.labels` are [task, queue]. */
  queueWait(seconds: number, series: HistogramSeries): void;
}

/** CountsByState reads how many jobs each state holds (from the database's counts snapshot). */
export type CountsByState = () => Promise<Partial<Record<JobState, number>>>;

// CLAIMED_STATE is where a claim leaves a job: an attempt runs from there to its outcome.
const CLAIMED_STATE = targetOf('CLAIM');

// MAX_OPEN bounds the claims remembered for their attempt's duration: a job whose outcome this runtime
// never writes (taken back by a sweep meanwhile) would otherwise be remembered for ever.
const MAX_OPEN = 100_000;

/**
 * JobMetrics is a runtime's own metrics registry, fed by its job transitions: transitions by from, to,
 * task and queue; attempt durations (from the claim to the outcome this runtime wrote, by the
 * runtime's clock); queue waits (from when the job was due, its runAt or its creation if later, to
 * its claim); and jobs per state, read when asked. It listens only once attached (first asked for),
 * so that a runtime whose metrics nobody reads pays nothing per job.
 */
export class JobMetrics {
  private readonly transitions = new Map<string, CountSeries>();
  private readonly durations = new Map<string, HistogramSeries>();
  private readonly waits = new Map<string, HistogramSeries>();
  // claimedAt holds, per job id, the clock time (ms) of its claim by this runtime.
  private readonly claimedAt = new Map<string, number>();
  private readonly observers: MetricsObserver[] = [];
  private attached = false;
  private readonly listener = (event: TransitionEvent) => this.record(event);

  constructor(
    private readonly events: RuntimeEvents,
    private readonly countsByState: CountsByState,
  ) {}

  /** attach starts listening to the runtime's transitions (once; later calls do nothing). */
  attach(): this {
    if (!this.attached) {
      this.attached = true;
      this.events.on('job:transition', this.listener);
    }
    return this;
  }

  /** detach stops listening; what was counted stays. */
  detach(): void {
    if (!this.attached) return;
    this.attached = false;
    this.events.off('job:transition', this.listener);
  }

  /** observe adds an observer of every observation from now on (and attaches the registry). */
  observe(observer: MetricsObserver): void {
    this.observers.push(observer);
    this.attach();
  }

  /** transitionSeries are the live transition counters, for a reader that copies them at once. */
  transitionSeries(): IterableIterator<CountSeries> {
    return this.transitions.values();
  }

  /** readCounts reads the jobs per state through the function the runtime was given. */
  readCounts(): Promise<Partial<Record<JobState, number>>> {
    return this.countsByState();
  }

  /** snapshot copies what was counted, and reads the jobs per state (null if that read failed). */
  async snapshot(): Promise<MetricsSnapshot> {
    let jobs: MetricsSnapshot['jobs'] = null;
    let jobsError: unknown = null;
    try {
      jobs = await this.countsByState();
    } catch (error) {
      jobsError = error;
    }
    const copy = (series: HistogramSeries) => ({ ...series, buckets: [...series.buckets] });
    return {
      transitions: [...this.transitions.values()].map((series) => ({ ...series })),
      attemptDuration: [...this.durations.values()].map(copy),
      queueWait: [...this.waits.values()].map(copy),
      jobs,
      jobsError,
    };
  }

  // record counts one transition and, for a claim or an attempt's outcome, its wait or duration.
  private record(event: TransitionEvent): void {
    const { job, from, to } = event;
    const fromName = from ?? NO_STATE;
    const key = `${fromName}\u0000${to}\u0000${job.task}\u0000${job.queue}`;
    const series = this.transitions.get(key);
    if (series) series.value++;
    else this.transitions.set(key, { labels: [fromName, to, job.task, job.queue], value: 1 });
    if (event.event === 'CLAIM') this.claimed(event);
    else if (from === CLAIMED_STATE) this.concluded(event);
  }

  private claimed({ job, at }: TransitionEvent): void {
    const claimedAt = at.getTime();
    if (this.claimedAt.size >= MAX_OPEN) {
      const oldest = this.claimedAt.keys().next().value as string;
      this.claimedAt.delete(oldest);
    }
    this.claimedAt.delete(job.id);
    this.claimedAt.set(job.id, claimedAt);
    const due = Math.max(job.runAt?.getTime() ?? 0, job.createdAt.getTime());
    const seconds = Math.max(0, claimedAt - due) / 1000;
    const series = observeInto(this.waits, WAIT_BUCKETS, [job.task, job.queue], seconds);
    for (const observer of this.observers) observer.queueWait(seconds, series);
  }

  private concluded({ job, to, at }: TransitionEvent): void {
    const claimedAt = this.claimedAt.get(job.id);
    if (claimedAt === undefined) return;
    this.claimedAt.delete(job.id);
    const seconds = Math.max(0, at.getTime() - claimedAt) / 1000;
    const series = observeInto(this.durations, DURATION_BUCKETS, [job.task, job.queue, to], seconds);
    for (const observer of this.observers) observer.attemptDuration(seconds, series);
  }
}

// observeInto adds one observation to the histogram series of `labels`, and returns that series.
function observeInto(
  histograms: Map<string, HistogramSeries>,
  bounds: readonly number[],
  labels: readonly string[],
  value: number,
): HistogramSeries {
  const key = labels.join('\u0000');
  let series = histograms.get(key);
  if (!series) {
    series = { labels, buckets: new Array<number>(bounds.length + 1).fill(0), sum: 0, count: 0 };
    histograms.set(key, series);
  }
  let i = 0;
  while (i < bounds.length && value > (bounds[i] as number)) i++;
  series.buckets[i] = (series.buckets[i] ?? 0) + 1;
  series.sum += value;
  series.count++;
  return series;
}
