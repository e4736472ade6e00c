/**
 * The roster: every system the benchmark compares, in the order tables and the chart list them.
 * jobchart comes first, as the reference every ratio divides by.
 */
import { bullmqSystem } from './bullmq.js';
import { graphileSystem } from './graphile.js';
import { jobchartSystem } from './jobchart.js';
import { pgBossSystem } from './pg-boss.js';
import { rawSqlOnJobsTableSystem, rawSqlSystem } from './raw-sql.js';
import type { System } from './system.js';

/** allSystems returns a fresh instance of every benchmarked system, jobchart first. */
export function allSystems(): System[] {
  return [
    jobchartSystem(),
    graphileSystem(false),
    graphileSystem(true),
    pgBossSystem(),
    bullmqSystem(),
    rawSqlSystem(),
    rawSqlOnJobsTableSystem(),
  ];
}
