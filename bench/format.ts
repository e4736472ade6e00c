/**
 * Number formatting shared by the markdown tables and the SVG chart, so both show a figure the same
 * way: rates, byte and row counts as whole numbers with thousands separators, milliseconds with
 * two decimals, memory, CPU microseconds and seconds with one, ratios as multipliers.
 */
/** Unit is what a figure counts in. */
export type Unit = 'jobs/s' | 'ms' | 'MiB' | 'µs' | 'bytes' | 'rows' | 's';

const whole = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** formatCount writes a count with thousands separators, e.g. 20,000. */
export function formatCount(count: number): string {
  return whole.format(count);
}

/** formatValue writes a figure in its unit's precision; a missing figure is "n/a". */
export function formatValue(value: number | null | undefined, unit: Unit): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return 'n/a';
  if (unit === 'jobs/s' || unit === 'bytes' || unit === 'rows') return whole.format(value);
  return value.toFixed(unit === 'ms' ? 2 : 1);
}

/** formatRatio writes a ratio as a multiplier, e.g. 1.25×; a missing ratio is "n/a". */
export function formatRatio(ratio: number | null | undefined): string {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return 'n/a';
  return `${ratio.toFixed(2)}×`;
}
