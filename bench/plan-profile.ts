/**
 * The SQL half of `npm run bench:profile`: every statement a drain runs, executed under auto_explain
 * (EXPLAIN ANALYZE with buffers and WAL, nested statements included, so the UPDATE inside a claim
 * function shows up as itself), collected from the notices of the drain's own connections and
 * summed per statement. It answers where the server's time goes per job and what each statement
 * writes, which is what separates a minimal table from a wide one with several indexes.
 */
import pg from 'pg';

/** AUTO_EXPLAIN_SETTINGS load auto_explain into each new session and send every plan as a notice. */
const AUTO_EXPLAIN_SETTINGS = [
  'session_preload_libraries=auto_explain',
  'auto_explain.log_min_duration=0',
  'auto_explain.log_analyze=on',
  'auto_explain.log_buffers=on',
  'auto_explain.log_wal=on',
  'auto_explain.log_timing=on',
  'auto_explain.log_nested_statements=on',
  'auto_explain.log_format=json',
  'auto_explain.log_level=notice',
];

/** PlanNode is the part of an EXPLAIN (FORMAT JSON) node the profile reads. */
interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Function Name'?: string;
  'Actual Total Time'?: number;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  'Shared Dirtied Blocks'?: number;
  'WAL Records'?: number;
  'WAL FPI'?: number;
  'WAL Bytes'?: number;
  Plans?: PlanNode[];
}

/** ExplainedStatement is one execution auto_explain reported. */
interface ExplainedStatement {
  text: string;
  durationMs: number;
  plan: PlanNode;
}

/** StatementProfile is every execution of one statement text over a drain, summed. */
export interface StatementProfile {
  /** text is the statement with its whitespace collapsed. */
  text: string;
  calls: number;
  durationMs: number;
  sharedHit: number;
  sharedRead: number;
  sharedDirtied: number;
  walRecords: number;
  walFullPages: number;
  walBytes: number;
  /** typicalPlan is the plan of the execution whose duration is the median of this statement's. */
  typicalPlan: PlanNode;
  typicalDurationMs: number;
}

const NOTICE = /^duration: ([\d.]+) ms\s+plan:\s*([\s\S]*)$/;

/**
 * PlanCollector gathers auto_explain's notices from the connections of a pool it made, and sums
 * them per statement text.
 */
export class PlanCollector {
  private readonly explained: ExplainedStatement[] = [];
  private unreadable = 0;

  /**
   * explainingPool makes a pool whose sessions run every statement under auto_explain and report
   * the plans to this collector. Loading auto_explain per session needs a superuser.
   */
  explainingPool(connectionString: string, max: number): pg.Pool {
    const options = AUTO_EXPLAIN_SETTINGS.map((setting) => `-c ${setting}`).join(' ');
    const pool = new pg.Pool({ connectionString, max, options });
    pool.on('error', () => undefined);
    pool.on('connect', (client) => {
      client.on('notice', (notice) => this.add(notice.message ?? ''));
    });
    return pool;
  }

  /** forget drops what was collected so far (the setup before the drain that is profiled). */
  forget(): void {
    this.explained.length = 0;
    this.unreadable = 0;
  }

  private add(message: string): void {
    const match = NOTICE.exec(message);
    if (!match) return;
    try {
      const document = JSON.parse(match[2] as string) as { 'Query Text': string; Plan: PlanNode };
      this.explained.push({
        text: document['Query Text'].replace(/\s+/g, ' ').trim(),
        durationMs: Number(match[1]),
        plan: document.Plan,
      });
    } catch {
      this.unreadable += 1;
    }
  }

  /** statements sums what was collected per statement text, the most time-consuming first. */
  statements(): StatementProfile[] {
    if (this.unreadable > 0) throw new Error(`${this.unreadable} auto_explain notices could not be read`);
    const byText = new Map<string, ExplainedStatement[]>();
    for (const statement of this.explained) {
      const runs = byText.get(statement.text) ?? [];
      runs.push(statement);
      byText.set(statement.text, runs);
    }
    return [...byText.entries()]
      .map(([text, runs]) => summarise(text, runs))
      .sort((a, b) => b.durationMs - a.durationMs);
  }
}

function summarise(text: string, runs: ExplainedStatement[]): StatementProfile {
  const sum = (read: (plan: PlanNode) => number | undefined) =>
    runs.reduce((total, run) => total + (read(run.plan) ?? 0), 0);
  const byDuration = [...runs].sort((a, b) => a.durationMs - b.durationMs);
  const typical = byDuration[Math.floor(byDuration.length / 2)] as ExplainedStatement;
  return {
    text,
    calls: runs.length,
    durationMs: runs.reduce((total, run) => total + run.durationMs, 0),
    sharedHit: sum((plan) => plan['Shared Hit Blocks']),
    sharedRead: sum((plan) => plan['Shared Read Blocks']),
    sharedDirtied: sum((plan) => plan['Shared Dirtied Blocks']),
    walRecords: sum((plan) => plan['WAL Records']),
    walFullPages: sum((plan) => plan['WAL FPI']),
    walBytes: sum((plan) => plan['WAL Bytes']),
    typicalPlan: typical.plan,
    typicalDurationMs: typical.durationMs,
  };
}

/**
 * renderPlan writes a plan as an indented tree, one node per line: what it did, on which relation
 * or index, its actual rows and time, and the buffers and WAL it (with its children) used.
 */
export function renderPlan(plan: PlanNode, depth = 0): string[] {
  const target = plan['Index Name']
    ? ` using ${plan['Index Name']}${plan['Relation Name'] ? ` on ${plan['Relation Name']}` : ''}`
    : plan['Relation Name']
      ? ` on ${plan['Relation Name']}`
      : plan['Function Name']
        ? ` on ${plan['Function Name']}()`
        : '';
  const loops = plan['Actual Loops'] ?? 1;
  const figures = [
    `rows=${plan['Actual Rows'] ?? '?'}${loops > 1 ? ` loops=${loops}` : ''}`,
    `time=${(plan['Actual Total Time'] ?? 0).toFixed(3)} ms`,
    `hit=${plan['Shared Hit Blocks'] ?? 0}`,
    `dirtied=${plan['Shared Dirtied Blocks'] ?? 0}`,
    `WAL records=${plan['WAL Records'] ?? 0} bytes=${plan['WAL Bytes'] ?? 0}`,
  ];
  const line = `${'  '.repeat(depth)}${depth > 0 ? '-> ' : ''}${plan['Node Type']}${target} (${figures.join(', ')})`;
  return [line, ...(plan.Plans ?? []).flatMap((child) => renderPlan(child, depth + 1))];
}
