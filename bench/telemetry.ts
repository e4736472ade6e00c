/**
 * The cost of telemetry on a drain: the same backlog of no-op jobs drained by a worker with
 * `telemetry: false`, with the OpenTelemetry API loaded but no SDK registered, and with an SDK
 * registered (a tracer provider batching every attempt span to an exporter that drops them, a meter
 * provider with a reader, the async-hooks context manager and the W3C propagator). Rounds rotate the
 * order; each run gets a fresh database; ratios are taken within a round, then the median.
 *
 * Run: `npm run build && node dist/scripts/with-database.js node dist/bench/telemetry.js [total] [rounds]`
 * (or with DATABASE_URL set, `node dist/bench/telemetry.js`).
 */
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { type ExportResult, ExportResultCode, W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { createRuntime } from '../src/index.js';
import { dropAllCreated, untilDone, withFreshDatabase } from './database.js';
import { median } from './stats.js';
import { enqueueNoops, quietLogger, UNFINISHED_SQL } from './systems/jobchart.js';
import { DrainTimer } from './systems/system.js';

// off: `telemetry: false`, no SDK; api-no-sdk: the API loaded, no SDK registered; sdk: an SDK
// registered; sdk-off: the same SDK registered but `telemetry: false` (what the SDK and its context
// manager cost the process by themselves, jobchart tracing nothing).
type Mode = 'off' | 'api-no-sdk' | 'sdk' | 'sdk-off';
const MODES: readonly Mode[] = ['off', 'api-no-sdk', 'sdk', 'sdk-off'];

// DroppingExporter counts the spans it is given and keeps none: the cost measured is jobchart's and
// the SDK's, not an exporter's.
class DroppingExporter implements SpanExporter {
  exported = 0;
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.exported += spans.length;
    done({ code: ExportResultCode.SUCCESS });
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

interface Installed {
  exporter: DroppingExporter;
  uninstall(): Promise<void>;
}

// install registers an SDK as an application would before starting jobchart.
function install(): Installed {
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const exporter = new DroppingExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new BatchSpanProcessor(exporter, { maxQueueSize: 100_000, maxExportBatchSize: 5_000 })],
  });
  trace.setGlobalTracerProvider(tracerProvider);
  const reader = new PeriodicExportingMetricReader({
    exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
    exportIntervalMillis: 1_000,
  });
  const meterProvider = new MeterProvider({ readers: [reader] });
  metrics.setGlobalMeterProvider(meterProvider);
  return {
    exporter,
    async uninstall() {
      await tracerProvider.forceFlush();
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
      trace.disable();
      metrics.disable();
      propagation.disable();
      context.disable();
    },
  };
}

async function drain(
  url: string,
  total: number,
  mode: Mode,
): Promise<{ jobsPerSecond: number; spans: number }> {
  await enqueueNoops(url, total);
  const installed = mode === 'sdk' || mode === 'sdk-off' ? install() : null;
  const worker = createRuntime({
    connectionString: url,
    logger: quietLogger(),
    maxRunningJobs: 10,
    telemetry: mode === 'api-no-sdk' || mode === 'sdk',
    tasks: { noop: () => undefined },
  });
  try {
    const timer = await DrainTimer.start(url);
    await worker.start();
    await untilDone(url, UNFINISHED_SQL);
    const { jobsPerSecond } = await timer.finish(total);
    await worker.stop();
    await installed?.uninstall();
    return { jobsPerSecond, spans: installed?.exporter.exported ?? 0 };
  } catch (error) {
    await worker.stop();
    await installed?.uninstall();
    throw error;
  }
}

function installed(mode: Mode): boolean {
  return mode === 'sdk' || mode === 'sdk-off';
}

async function main(): Promise<void> {
  const baseUrl = process.env.DATABASE_URL;
  if (!baseUrl) throw new Error('DATABASE_URL is not set');
  const total = Number(process.argv[2] ?? 20_000);
  const rounds = Number(process.argv[3] ?? 3);
  const figures: Record<Mode, number[]> = { off: [], 'api-no-sdk': [], sdk: [], 'sdk-off': [] };
  try {
    for (let round = 0; round < rounds; round++) {
      const order = MODES.map((_, i) => MODES[(i + round) % MODES.length] as Mode);
      for (const mode of order) {
        const result = await withFreshDatabase(baseUrl, (url) => drain(url, total, mode));
        figures[mode].push(result.jobsPerSecond);
        console.log(
          `round ${round + 1} ${mode.padEnd(11)} ${Math.round(result.jobsPerSecond)} jobs/s${installed(mode) ? ` (${result.spans} spans exported)` : ''}`,
        );
      }
    }
  } finally {
    await dropAllCreated(baseUrl);
  }
  const ratio = (mode: Mode) =>
    median(figures[mode].map((value, round) => value / (figures.off[round] as number))).toFixed(3);
  console.log(
    `drain of ${total} no-op jobs, maxRunningJobs 10, ${rounds} rounds (median of per-round ratios):`,
  );
  console.log(`  api-no-sdk / off: ${ratio('api-no-sdk')}`);
  console.log(`  sdk / off:        ${ratio('sdk')}`);
  console.log(`  sdk-off / off:    ${ratio('sdk-off')}`);
  console.log(
    `  sdk / sdk-off:    ${median(figures.sdk.map((value, round) => value / (figures['sdk-off'][round] as number))).toFixed(3)}`,
  );
}

await main();
