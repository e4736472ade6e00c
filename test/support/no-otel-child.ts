// Run by test/telemetry.test.ts with `--import no-otel-register.js`: a runtime works jobs while
// `@opentelemetry/api` cannot be imported, and its own metrics still count. Prints one JSON line.
import type { TransitionEvent } from '../../src/index.js';
import { countEvents, testRuntime } from './helpers.js';

const schema = process.env.SCHEMA as string;
let importFailed: unknown = null;
try {
  await import('@opentelemetry/api');
} catch (error) {
  importFailed = (error as { code?: unknown }).code;
}
const worker = testRuntime({ schema, tasks: { plain: () => 'ok' } });
const metrics = worker.metrics();
await worker.start();
const succeeded = countEvents<TransitionEvent>(worker.events, 'job:succeeded', 3);
const jobs = await worker.enqueueMany([{ task: 'plain' }, { task: 'plain' }, { task: 'plain' }]);
const done = await succeeded;
const snapshot = await metrics.snapshot();
const internals = worker as unknown as { parts: { telemetry: { openTelemetry: unknown } } };
await worker.stop();
process.stdout.write(
  `${JSON.stringify({
    importFailed,
    loaded: internals.parts.telemetry.openTelemetry,
    succeeded: done.length,
    traceContexts: jobs.map((job) => job.traceContext),
    transitionsCounted: snapshot.transitions.some(
      (series) => series.labels[1] === 'succeeded' && series.value === 3,
    ),
  })}\n`,
);
