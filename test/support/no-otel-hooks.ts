// Module resolution hooks that refuse `@opentelemetry/api` as Node refuses a package that is not
// installed (ERR_MODULE_NOT_FOUND), whatever node_modules holds.

/** resolve refuses `@opentelemetry/api` (and its subpaths); every other specifier resolves as usual. */
export async function resolve(
  specifier: string,
  context: unknown,
  nextResolve: (specifier: string, context: unknown) => Promise<unknown>,
): Promise<unknown> {
  if (specifier === '@opentelemetry/api' || specifier.startsWith('@opentelemetry/api/')) {
    throw Object.assign(new Error(`Cannot find package '${specifier}' (refused by no-otel-hooks)`), {
      code: 'ERR_MODULE_NOT_FOUND',
    });
  }
  return nextResolve(specifier, context);
}
