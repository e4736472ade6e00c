import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { targetOf } from '../core/transitions.js';
import type { AttemptHook, AttemptScope } from '../jobs/attempt-hook.js';
import type { RuntimeEvents, TransitionEvent } from '../jobs/events.js';
import type { Job } from '../storage/job-row.js';
import { type CountsByState, JobMetrics } from './job-metrics.js';
import { type Importer, loadOpenTelemetry, type OpenTelemetryApi } from './otel-loader.js';
import { bindMeter } from './otel-metrics.js';
import { AttemptTracing, injectTraceContext } from './otel-tracing.js';

/** TelemetryDeps is what a runtime's telemetry works with. */
export interface TelemetryDeps {
  /** enabled loads the OpenTelemetry API (the `telemetry` option); false never imports it. */
  enabled: boolean;
  events: RuntimeEvents;
  clock: Clock;
  logger: Logger;
  consumerId: string;
  /** countsByState reads the jobs per state for the jobs gauge (the stats snapshot). */
  countsByState: CountsByState;
  /** importer loads `@opentelemetry/api` (default a dynamic import of it). */
  importer?: Importer;
}

// CLAIMED_STATE is where a claim leaves a job: a transition out of it is an attempt's outcome.
const CLAIMED_STATE = targetOf('CLAIM');

/**
 * Telemetry is a runtime's observability part: its own metrics registry (JobMetrics, read by the
 * Prometheus handler, attached once someone asks for it) and, when `@opentelemetry/api` can be
 * imported, the OpenTelemetry side: trace context injected at enqueue, a span per attempt (as the
 * executor's AttemptHook) and instruments fed from the registry. Without the API it does nothing per
 * job: `begin` returns null and enqueue injects nothing.
 */
export class Telemetry implements AttemptHook {
  /** metrics is the runtime's own registry; it counts once attached (see JobMetrics). */
  readonly metrics: JobMetrics;
  private api: OpenTelemetryApi | null = null;
  private tracing: AttemptTracing | null = null;
  private loaded = false;
  private meterBound = false;
  private readonly loading: Promise<void>;
  private readonly outcomes = (event: TransitionEvent) => {
    if (event.from === CLAIMED_STATE) this.tracing?.ended(event.job.id, event.to);
  };
  private hearingOutcomes = false;

  constructor(private readonly deps: TelemetryDeps) {
    this.metrics = new JobMetrics(deps.events, deps.countsByState);
    this.loading = deps.enabled ? this.load(deps.importer) : Promise.resolve();
    void this.loading.then(() => {
      this.loaded = true;
    });
  }

  /** openTelemetry is the loaded API, or null (not installed, not loaded yet, or turned off). */
  get openTelemetry(): OpenTelemetryApi | null {
    return this.api;
  }

  /**
   * start waits for the API to load, then feeds OpenTelemetry's instruments from the registry if an
   * SDK registered a meter provider by then (checked once: register the SDK before starting).
   */
  async start(): Promise<void> {
    await this.loading;
    if (this.api === null || this.meterBound) return;
    this.meterBound = bindMeter(this.api, this.metrics, this.deps.clock);
  }

  /** begin starts an attempt's span when the API is loaded and a tracer provider registered. */
  begin(job: Job): AttemptScope | null {
    return this.tracing === null ? null : this.tracing.begin(job);
  }

  /**
   * traceContextJson is the trace context of the caller's active span, as JSON text for a new job's
   * `trace_context`, or null (no API, no active span, or telemetry off).
   */
  async traceContextJson(): Promise<string | null> {
    if (!this.loaded) await this.loading;
    return this.api === null ? null : injectTraceContext(this.api);
  }

  /** close stops listening and ends the attempt spans still open, as `lost`. */
  close(): void {
    this.metrics.detach();
    if (this.hearingOutcomes) this.deps.events.off('job:transition', this.outcomes);
    this.hearingOutcomes = false;
    this.tracing?.endAll();
  }

  private async load(importer: Importer | undefined): Promise<void> {
    try {
      this.api = await loadOpenTelemetry(importer);
    } catch (error) {
      this.deps.logger.warn({ err: error }, '@opentelemetry/api could not be loaded; telemetry is off');
      return;
    }
    if (this.api === null) return;
    this.tracing = new AttemptTracing(this.api, this.deps.consumerId, () => {
      if (this.hearingOutcomes) return;
      this.hearingOutcomes = true;
      this.deps.events.on('job:transition', this.outcomes);
    });
  }
}
