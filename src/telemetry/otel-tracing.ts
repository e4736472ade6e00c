import type { Span, Tracer, TracerProvider } from '@opentelemetry/api';
import type { JobState } from '../../machines/job.js';
import { errorText } from '../core/error-text.js';
import type { AttemptHook, AttemptScope } from '../jobs/attempt-hook.js';
import type { Job, TraceContext } from '../storage/job-row.js';
import type { OpenTelemetryApi } from './otel-loader.js';

/** MESSAGING_SYSTEM is jobchart's `messaging.system` attribute. */
export const MESSAGING_SYSTEM = 'jobchart';

/** INSTRUMENTATION_NAME names jobchart's tracer and meter. */
export const INSTRUMENTATION_NAME = 'jobchart';

// MAX_OPEN_SPANS bounds the attempt spans waiting for their outcome: one whose outcome this runtime
// never writes (the job taken back by a sweep meanwhile) is ended as `lost` past this many.
const MAX_OPEN_SPANS = 10_000;

/**
 * AttemptTracing starts a CONSUMER span for each attempt, child of the trace context the job carries
 * from its enqueue, active while the handler runs, and ends it with the job's outcome once that is
 * written. It does nothing (not even allocate) while no tracer provider is registered.
 */
export class AttemptTracing implements AttemptHook {
  private readonly noopProvider: TracerProvider;
  private tracer: Tracer | null = null;
  // open holds each attempt's span, by job id, until its outcome transition ends it.
  private readonly open = new Map<string, Span>();

  constructor(
    private readonly api: OpenTelemetryApi,
    private readonly consumerId: string,
    /** onFirstSpan is told once that a span was started, to start listening for outcomes. */
    private readonly onFirstSpan: () => void,
  ) {
    // A fresh proxy's delegate is the API's own no-op provider: the global one delegates to it
    // until an SDK is registered.
    this.noopProvider = new api.ProxyTracerProvider().getDelegate();
  }

  /** begin starts the attempt's span, or returns null while no SDK is registered. */
  begin(job: Job): AttemptScope | null {
    const tracer = this.tracer ?? this.registeredTracer();
    if (tracer === null) return null;
    const { api } = this;
    const parent = job.traceContext
      ? api.propagation.extract(api.ROOT_CONTEXT, job.traceContext)
      : api.ROOT_CONTEXT;
    const span = tracer.startSpan(
      `process ${job.task}`,
      {
        kind: api.SpanKind.CONSUMER,
        attributes: {
          'messaging.system': MESSAGING_SYSTEM,
          'messaging.operation.name': 'process',
          'messaging.operation.type': 'process',
          'messaging.destination.name': job.queue,
          'messaging.message.id': job.id,
          'messaging.client.id': this.consumerId,
          'jobchart.task': job.task,
          'jobchart.job.attempt': job.attempts,
        },
      },
      parent,
    );
    const active = api.trace.setSpan(parent, span);
    const run = <T>(handler: () => T): T => api.context.with(active, handler);
    // A span the sampler dropped is still the handler's context, so that the handler's own spans
    // follow the same sampling decision; there is nothing of it to end or record.
    if (!span.isRecording()) return { run, settled: () => undefined };
    this.ended(job.id, 'lost');
    if (this.open.size >= MAX_OPEN_SPANS) this.ended(this.open.keys().next().value as string, 'lost');
    this.open.set(job.id, span);
    return {
      run,
      settled: (failed, error) => {
        if (!failed) return;
        const { message } = errorText(error);
        if (error instanceof Error) span.recordException(error);
        else span.recordException(message);
        span.setAttribute('error.type', error instanceof Error ? error.name : '_OTHER');
        span.setStatus({ code: api.SpanStatusCode.ERROR, message });
      },
    };
  }

  /** ended ends the open span of job `id` (if any) with its outcome: the state the attempt led to. */
  ended(id: string, outcome: JobState | 'lost'): void {
    const span = this.open.get(id);
    if (span === undefined) return;
    this.open.delete(id);
    span.setAttribute('jobchart.job.outcome', outcome);
    span.end();
  }

  /** endAll ends every span still open as `lost` (the runtime stops without their outcomes). */
  endAll(): void {
    for (const id of [...this.open.keys()]) this.ended(id, 'lost');
  }

  // registeredTracer returns jobchart's tracer once an SDK registered a tracer provider.
  private registeredTracer(): Tracer | null {
    const provider = this.api.trace.getTracerProvider() as TracerProvider & {
      getDelegate?(): TracerProvider;
    };
    if (provider.getDelegate?.() === this.noopProvider) return null;
    this.tracer = this.api.trace.getTracer(INSTRUMENTATION_NAME);
    this.onFirstSpan();
    return this.tracer;
  }
}

/**
 * injectTraceContext returns the active span's trace context as JSON text (through the global
 * propagator: W3C `traceparent`/`tracestate` with the SDK's default), or null when no valid span is
 * active or the propagator writes nothing.
 */
export function injectTraceContext(api: OpenTelemetryApi): string | null {
  const active = api.context.active();
  const spanContext = api.trace.getSpanContext(active);
  if (spanContext === undefined || !api.isSpanContextValid(spanContext)) return null;
  const carrier: TraceContext = {};
  api.propagation.inject(active, carrier);
  return Object.keys(carrier).length === 0 ? null : JSON.stringify(carrier);
}
