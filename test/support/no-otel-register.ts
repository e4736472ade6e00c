// Registers no-otel-hooks.js, for a process started with `--import` to run as if
// `@opentelemetry/api` were not installed.
import { register } from 'node:module';

register('./no-otel-hooks.js', import.meta.url);
