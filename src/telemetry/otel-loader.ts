import type * as OtelApi from '@opentelemetry/api';

/** OpenTelemetryApi is the `@opentelemetry/api` module, as loaded at run time. */
export type OpenTelemetryApi = typeof OtelApi;

/** Importer loads `@opentelemetry/api`; tests give one that fails as a missing module would. */
export type Importer = () => Promise<unknown>;

/** importOpenTelemetry imports `@opentelemetry/api` the way jobchart does by default. */
export const importOpenTelemetry: Importer = () => import('@opentelemetry/api');

/**
 * loadOpenTelemetry loads the OpenTelemetry API once, at run time, so that jobchart works without it:
 * it resolves null when the package is not installed (or is not the API), and rejects only for any
 * other failure of the import (a broken install), which the caller reports.
 */
export async function loadOpenTelemetry(
  importer: Importer = importOpenTelemetry,
): Promise<OpenTelemetryApi | null> {
  let loaded: unknown;
  try {
    loaded = await importer();
  } catch (error) {
    if (isModuleNotFound(error)) return null;
    throw error;
  }
  const api = (loaded as { default?: unknown }).default ?? loaded;
  return isApi(api) ? (api as OpenTelemetryApi) : null;
}

// isModuleNotFound tells the error of an import whose package is not installed.
function isModuleNotFound(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

function isApi(api: unknown): boolean {
  const candidate = api as Partial<OpenTelemetryApi> | null;
  return (
    typeof candidate?.trace?.getTracerProvider === 'function' &&
    typeof candidate.metrics?.getMeter === 'function' &&
    typeof candidate.propagation?.inject === 'function' &&
    typeof candidate.context?.with === 'function'
  );
}
