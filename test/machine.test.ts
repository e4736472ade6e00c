import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createActor, transition } from 'xstate';
import {
  DEFAULT_MAX_INTERRUPTIONS,
  JOB_STATES,
  type JobEventType,
  type JobState,
  jobMachine,
  STORED_STATES,
} from '../machines/job.js';
import { InvalidTransitionError } from '../src/core/errors.js';
import { LIVE_STATES, planTransition, sourcesOf, targetOf, tryTransition } from '../src/core/transitions.js';
import { jobActorLogic } from '../src/dispatch/job-actors.js';

// EXPECTED is the lifecycle written out by hand: every (state, event) pair not listed must be refused.
const WAITING = {
  CLAIM: 'running',
  EXPIRE: 'expired',
  CANCEL: 'cancelled',
  RESCHEDULE: 'not_started',
  REPLACE: 'not_started',
  REMOVE: 'removed',
} as const;
const EXPECTED: Record<JobState, Partial<Record<JobEventType, JobState>>> = {
  not_started: WAITING,
  retry: WAITING,
  interrupted: WAITING,
  running: {
    SUCCEED: 'succeeded',
    RETRY: 'retry',
    FAIL: 'failed',
    INTERRUPT: 'interrupted',
    RELEASE: 'not_started',
    RERUN: 'not_started',
    CANCEL: 'cancelled',
  },
  succeeded: { REMOVE: 'removed' },
  failed: { RESTART: 'not_started', REMOVE: 'removed' },
  cancelled: { RESTART: 'not_started', REMOVE: 'removed' },
  expired: { RESTART: 'not_started', REMOVE: 'removed' },
  removed: {},
};

const EVENTS: JobEventType[] = [
  'CLAIM',
  'SUCCEED',
  'RETRY',
  'FAIL',
  'INTERRUPT',
  'RELEASE',
  'RERUN',
  'CANCEL',
  'EXPIRE',
  'RESCHEDULE',
  'REPLACE',
  'REMOVE',
  'RESTART',
];

describe('job machine', () => {
  for (const state of JOB_STATES) {
    for (const event of EVENTS) {
      const target = EXPECTED[state][event];
      const job = { id: '42', state, attempts: 1, maxAttempts: 3 };
      if (target) {
        it(`${state} --${event}--> ${target}`, () => {
          assert.equal(planTransition(job, { type: event }).to, target);
        });
      } else {
        it(`${state} refuses ${event}`, () => {
          assert.throws(
            () => planTransition(job, { type: event }),
            (error: unknown) =>
              error instanceof InvalidTransitionError &&
              error.jobId === '42' &&
              error.state === state &&
              error.event === event &&
              error.message.includes('job 42') &&
              error.message.includes(state) &&
              error.message.includes(event),
          );
        });
      }
    }
  }

  it('counts attempts: CLAIM spends one, RELEASE and RERUN refund it, RESTART resets', () => {
    assert.equal(
      planTransition({ id: '1', state: 'not_started', attempts: 0, maxAttempts: 3 }, { type: 'CLAIM' })
        .attempts,
      1,
    );
    assert.equal(
      planTransition({ id: '1', state: 'running', attempts: 2, maxAttempts: 3 }, { type: 'RELEASE' })
        .attempts,
      1,
    );
    assert.equal(
      planTransition({ id: '1', state: 'running', attempts: 2, maxAttempts: 3 }, { type: 'RERUN' }).attempts,
      1,
    );
    assert.equal(
      planTransition({ id: '1', state: 'failed', attempts: 3, maxAttempts: 3 }, { type: 'RESTART' }).attempts,
      0,
    );
  });

  it('refuses RETRY once attempts are used up', () => {
    assert.throws(
      () => planTransition({ id: '7', state: 'running', attempts: 3, maxAttempts: 3 }, { type: 'RETRY' }),
      InvalidTransitionError,
    );
  });

  it('remembers exactly what a fresh machine actor decides, for every state, event and attempt count', () => {
    let compared = 0;
    for (const state of JOB_STATES) {
      for (const event of EVENTS) {
        for (let maxAttempts = 1; maxAttempts <= 3; maxAttempts++) {
          for (let attempts = 0; attempts <= maxAttempts; attempts++) {
            const context = {
              jobId: `j${compared}`,
              attempts,
              maxAttempts,
              // One interruption, so that an event that resets them shows it.
              interruptions: 1,
              maxInterruptions: DEFAULT_MAX_INTERRUPTIONS,
            };
            const machine = createActor(jobMachine, {
              snapshot: jobMachine.resolveState({ value: state, context }),
              input: { jobId: context.jobId, maxAttempts },
            }).start();
            const before = machine.getSnapshot();
            machine.send({ type: event });
            const after = machine.getSnapshot();
            const refused = after === before && !before.can({ type: event });
            const job = { id: context.jobId, state, attempts, maxAttempts };
            // Asked twice: the second answer comes from memory and must equal the first.
            for (const planned of [tryTransition(job, event), tryTransition(job, event)]) {
              if (refused) assert.equal(planned, null, `${state} ${event} ${attempts}/${maxAttempts}`);
              else
                assert.deepEqual(planned, {
                  event,
                  from: state,
                  to: after.value,
                  attempts: after.context.attempts,
                  finished: after.hasTag('finished'),
                  resetsInterruptions: after.context.interruptions === 0,
                });
            }
            // The job actor's logic moves as the machine actor did.
            const actor = createActor(
              jobActorLogic({ ...job, interruptions: 0 }, DEFAULT_MAX_INTERRUPTIONS),
            ).start();
            actor.send({ type: event });
            assert.equal(actor.getSnapshot().value, refused ? state : after.value);
            assert.equal(actor.getSnapshot().context.attempts, refused ? attempts : after.context.attempts);
            compared++;
          }
        }
      }
    }
    assert.equal(compared, JOB_STATES.length * EVENTS.length * 9);
  });

  it('refunds the attempt on INTERRUPT and counts the interruption; fails the job on the last interruption allowed', () => {
    const running = (interruptions: number) =>
      jobMachine.resolveState({
        value: 'running',
        context: { jobId: '9', attempts: 1, maxAttempts: 1, interruptions, maxInterruptions: 3 },
      });
    const [interrupted] = transition(jobMachine, running(1), { type: 'INTERRUPT' });
    assert.equal(interrupted.value, 'interrupted');
    assert.equal(interrupted.context.attempts, 0, 'a job that never ran its handler keeps its attempt');
    assert.equal(interrupted.context.interruptions, 2);
    // The third interruption of three: the machine itself fails the job, counting the interruption.
    const [failed] = transition(jobMachine, running(2), { type: 'INTERRUPT' });
    assert.equal(failed.value, 'failed');
    assert.equal(failed.context.attempts, 1, 'the attempt stays spent');
    assert.equal(failed.context.interruptions, 3);
  });

  it('derives the claim from the machine: claimable states and target', () => {
    assert.deepEqual(sourcesOf('CLAIM'), ['not_started', 'retry', 'interrupted']);
    assert.equal(targetOf('CLAIM'), 'running');
    assert.deepEqual(sourcesOf('RELEASE'), ['running']);
  });
});

// ---------------------------------------------------------------------------------------------------
// The state literals in SQL, against the machine.

/** SqlObject is one object a migration defines (a table, index, function...), with its statements in force. */
interface SqlObject {
  /** name is `kind name`, functions with their argument types: `function take_jobs(timestamptz, text)`. */
  name: string;
  /** base is `kind name` without argument types, what the rules below are keyed by. */
  base: string;
  file: string;
  statements: string[];
}

// splitStatements cuts SQL into statements at semicolons outside quotes, dollar-quoted bodies and
// comments, and drops the comments (a state named in a comment is not a state the SQL uses).
function splitStatements(sql: string): string[] {
  const statements: string[] = [];
  let current = '';
  let i = 0;
  const quoted = /'(?:[^']|'')*'/y;
  const dollar = /\$(\w*)\$/y;
  while (i < sql.length) {
    quoted.lastIndex = i;
    dollar.lastIndex = i;
    const quote = sql[i] === "'" ? quoted.exec(sql) : null;
    const tag = sql[i] === '$' ? dollar.exec(sql)?.[0] : undefined;
    if (sql.startsWith('--', i)) {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? sql.length : end;
    } else if (sql.startsWith('/*', i)) {
      const end = sql.indexOf('*/', i);
      assert.ok(end !== -1, 'unterminated comment');
      i = end + 2;
    } else if (quote) {
      current += quote[0];
      i += quote[0].length;
    } else if (tag) {
      const end = sql.indexOf(tag, i + tag.length);
      assert.ok(end !== -1, `unterminated ${tag}`);
      // The body is SQL too: its comments go, its literals stay.
      current += tag + splitStatements(sql.slice(i + tag.length, end)).join(';\n') + tag;
      i = end + tag.length;
    } else if (sql[i] === ';') {
      if (current.trim()) statements.push(current.trim());
      current = '';
      i++;
    } else {
      current += sql[i];
      i++;
    }
  }
  if (current.trim()) statements.push(current.trim());
  return statements;
}

// argTypes reads a function's argument types from its parameter list (names dropped) or a DROP's.
function argTypes(list: string): string {
  return list
    .split(',')
    .map((param) => param.trim().split(/\s+/))
    .filter((words) => words[0])
    .map((words) => (words.length > 1 ? words.slice(1) : words).join(' ').toLowerCase())
    .join(', ');
}

/**
 * objectsInForce replays the migrations' DDL by name: a later CREATE OR REPLACE supersedes an earlier
 * definition, a DROP removes one, an ALTER TABLE adds to its table. What is left is the schema a
 * runtime works with; every statement that is no DDL of a named object is returned as its own object.
 */
function objectsInForce(files: { file: string; sql: string }[]): Map<string, SqlObject> {
  const objects = new Map<string, SqlObject>();
  const define = (name: string, base: string, file: string, statement: string) =>
    objects.set(name, { name, base, file, statements: [statement] });
  const drop = (name: string, file: string) =>
    assert.ok(objects.delete(name), `${file} drops ${name}, which is not defined`);
  const ddl: [RegExp, (m: string[], file: string, statement: string) => void][] = [
    [
      /^CREATE (?:OR REPLACE )?FUNCTION (\w+) ?\(([^)]*)\)/i,
      ([, name = '', args = ''], file, statement) =>
        define(`function ${name}(${argTypes(args)})`, `function ${name}`, file, statement),
    ],
    [
      /^DROP FUNCTION (?:IF EXISTS )?(\w+) ?\(([^)]*)\)/i,
      ([, name = '', args = ''], file) => drop(`function ${name}(${argTypes(args)})`, file),
    ],
    [
      /^CREATE (?:UNIQUE )?INDEX (?:IF NOT EXISTS )?(\w+)/i,
      ([, name], file, statement) => define(`index ${name}`, `index ${name}`, file, statement),
    ],
    [/^DROP INDEX (?:IF EXISTS )?(\w+)/i, ([, name], file) => drop(`index ${name}`, file)],
    [
      /^CREATE TABLE (?:IF NOT EXISTS )?(\w+)/i,
      ([, name], file, statement) => define(`table ${name}`, `table ${name}`, file, statement),
    ],
    [
      /^ALTER TABLE (\w+)/i,
      ([, name], file, statement) => {
        const table = objects.get(`table ${name}`);
        assert.ok(table, `${file} alters table ${name}, which is not defined`);
        table.statements.push(statement);
      },
    ],
    [/^DROP TABLE (?:IF EXISTS )?(\w+)/i, ([, name], file) => drop(`table ${name}`, file)],
  ];
  for (const { file, sql } of files) {
    for (const statement of splitStatements(sql)) {
      const text = statement.replace(/\s+/g, ' ');
      const known = ddl.find(([pattern]) => pattern.test(text));
      if (known) known[1](known[0].exec(text) as string[], file, statement);
      else {
        const name = `${file}: ${text.slice(0, 60)}`;
        define(name, name, file, statement);
      }
    }
  }
  return objects;
}

/** StateUse is one place where SQL names job states, and what it names. */
interface StateUse {
  /** kind: `in` a list (IN (...)), `eq` one state compared (= or <>), `case` the two states a CASE assigns, `default` a column default. */
  kind: 'in' | 'not in' | 'eq' | 'case' | 'default';
  states: string[];
  text: string;
}

const literals = (text: string) => [...text.matchAll(/'((?:[^']|'')*)'/g)].map((m) => m[1] as string);

// stateUses finds every place a statement names job states, and every state literal it leaves unexplained.
function stateUses(statement: string): { uses: StateUse[]; unexplained: string[] } {
  const uses: StateUse[] = [];
  const explained: string[] = [];
  const add = (use: StateUse, span: string) => {
    uses.push(use);
    explained.push(...literals(span));
  };
  for (const m of statement.matchAll(/\bstate\s+(NOT\s+)?IN\s*\(([^)]*)\)/gi)) {
    add({ kind: m[1] ? 'not in' : 'in', states: literals(m[2] as string), text: m[0] }, m[2] as string);
  }
  for (const m of statement.matchAll(
    /\bstate\s*=\s*CASE\s+WHEN\s+.+?\s+THEN\s+('\w+')\s+ELSE\s+('\w+')\s+END/gis,
  )) {
    add(
      { kind: 'case', states: literals(`${m[1]} ${m[2]}`), text: m[0].replace(/\s+/g, ' ') },
      `${m[1]} ${m[2]}`,
    );
  }
  for (const m of statement.matchAll(/\bstate\s*(=|<>|!=)\s*('\w+')/gi)) {
    add({ kind: 'eq', states: literals(m[2] as string), text: m[0] }, m[2] as string);
  }
  for (const m of statement.matchAll(/\bstate\s+text\b[^,]*?\bDEFAULT\s+('\w+')/gi)) {
    add(
      { kind: 'default', states: literals(m[1] as string), text: m[0].replace(/\s+/g, ' ') },
      m[1] as string,
    );
  }
  // Any state literal not in one of the places above is one nobody checks: it must be explained.
  const unexplained = literals(statement).filter((literal) =>
    (JOB_STATES as readonly string[]).includes(literal),
  );
  for (const literal of explained) unexplained.splice(unexplained.indexOf(literal), 1);
  return { uses, unexplained };
}

describe('the job states in SQL', () => {
  const states = Object.keys(jobMachine.states) as JobState[];
  const tagged = (tag: string) => states.filter((state) => jobMachine.states[state]?.tags.includes(tag));
  const initial = createActor(jobMachine, { input: { jobId: '0', maxAttempts: 1 } }).getSnapshot().value;
  // Everything the SQL must agree with comes from the machine: its states, its tags, its transitions.
  const STORED = states.filter((state) => state !== 'removed');
  const CLAIMABLE = tagged('claimable');
  const LIVE = states.filter((state) => !tagged('finished').includes(state));
  const HELD = targetOf('CLAIM');

  it('derives its expectations from the machine consistently', () => {
    assert.deepEqual(states, [...JOB_STATES], 'JOB_STATES lists the machine states in order');
    assert.deepEqual(STORED, [...STORED_STATES]);
    assert.deepEqual(CLAIMABLE, sourcesOf('CLAIM'), 'the claimable tag marks the states CLAIM leaves');
    assert.deepEqual(sourcesOf('EXPIRE'), sourcesOf('CLAIM'), 'a claim expires a job from where it claims');
    assert.deepEqual(LIVE, [...LIVE_STATES]);
    assert.equal(initial, 'not_started');
  });

  // RULES says what every state list in force must equal, by object and kind of use. A use with no
  // rule fails the test: a new state list in a migration must say what it stands for here.
  type Rule = { meaning: string; states: readonly string[]; ordered?: boolean };
  const claimable: Rule = {
    meaning: 'the states the machine claims from (tagged claimable)',
    states: CLAIMABLE,
  };
  const heldElsewhere: Rule = { meaning: 'the state a claim leaves a job in (CLAIM target)', states: [HELD] };
  const claimFunction = { in: claimable };
  const serialClaimFunction = { in: claimable, eq: heldElsewhere };
  const takeFunction = {
    case: {
      meaning: 'THEN the EXPIRE target ELSE the CLAIM target',
      states: [targetOf('EXPIRE'), targetOf('CLAIM')],
      ordered: true,
    },
  };
  const RULES: Record<string, Partial<Record<StateUse['kind'], Rule>>> = {
    'table jobs': {
      default: { meaning: "the machine's initial state", states: [initial] },
      in: { meaning: 'every state a row can hold (all machine states but removed)', states: STORED },
    },
    'index jobs_claim_idx': { in: claimable },
    'index jobs_named_queue_claim_idx': { in: claimable },
    'index jobs_live_key_idx': {
      in: { meaning: 'the states not tagged finished (live jobs hold their key)', states: LIVE },
    },
    'function claim_jobs': claimFunction,
    'function claim_queue_jobs': claimFunction,
    'function claim_serial_job': serialClaimFunction,
    'function claim_jobs_json': claimFunction,
    'function claim_queue_jobs_json': claimFunction,
    'function claim_serial_job_json': serialClaimFunction,
    'function take_jobs': takeFunction,
    'function take_jobs_json': takeFunction,
  };

  it('every state list in every migration in force equals what the machine says', async () => {
    const { readdir, readFile } = await import('node:fs/promises');
    const dir = new URL('../../migrations/', import.meta.url);
    const names = (await readdir(dir)).filter((file) => file.endsWith('.sql')).sort();
    const files = await Promise.all(
      names.map(async (file) => ({ file, sql: await readFile(new URL(file, dir), 'utf8') })),
    );
    const objects = objectsInForce(files);
    const mismatches: string[] = [];
    const checked = new Set<string>();
    for (const object of objects.values()) {
      for (const statement of object.statements) {
        const { uses, unexplained } = stateUses(statement);
        for (const literal of unexplained) {
          mismatches.push(
            `${object.name} (${object.file}): state literal '${literal}' outside any known state list`,
          );
        }
        for (const use of uses) {
          const rule = RULES[object.base]?.[use.kind];
          const where = `${object.name} (${object.file}): ${use.text}`;
          if (!rule) {
            mismatches.push(`${where}: no rule says what this ${use.kind} state list must equal`);
            continue;
          }
          checked.add(`${object.base} ${use.kind}`);
          const unknown = use.states.filter((state) => !(JOB_STATES as readonly string[]).includes(state));
          const same = rule.ordered
            ? JSON.stringify(use.states) === JSON.stringify(rule.states)
            : JSON.stringify([...use.states].sort()) === JSON.stringify([...rule.states].sort()) &&
              new Set(use.states).size === use.states.length;
          if (unknown.length > 0)
            mismatches.push(`${where}: ${unknown.join(', ')} is no state of the machine`);
          else if (!same) {
            mismatches.push(
              `${where}: has ${use.states.join(', ')}; expected ${rule.meaning}: ${rule.states.join(', ')}`,
            );
          }
        }
      }
    }
    // Every rule must have been met: a claim function without its state filter would claim finished jobs.
    for (const [base, kinds] of Object.entries(RULES)) {
      for (const kind of Object.keys(kinds)) {
        if (!checked.has(`${base} ${kind}`))
          mismatches.push(`${base}: no ${kind} state list in force (expected one)`);
      }
    }
    assert.deepEqual(mismatches, []);
  });

  it('superseded definitions are not the ones checked', async () => {
    // take_jobs of 0001 (three arguments) was dropped by 0004; claim_jobs of 0001 was replaced twice.
    const objects = objectsInForce([
      {
        file: 'a.sql',
        sql: "CREATE FUNCTION f(p_a int) RETURNS int LANGUAGE sql AS $$ SELECT 1 WHERE 'x' = 'retry' $$;",
      },
      {
        file: 'b.sql',
        sql: 'DROP FUNCTION f(int); CREATE OR REPLACE FUNCTION f(p_a int, p_b text) RETURNS int LANGUAGE sql AS $$ SELECT 2 $$;',
      },
      {
        file: 'c.sql',
        sql: "CREATE INDEX i ON jobs (id) WHERE state IN ('running'); -- 'failed'\nDROP INDEX i;",
      },
    ]);
    assert.deepEqual([...objects.keys()], ['function f(int, text)']);
    assert.deepEqual(
      stateUses("x WHERE c.state IN ('a', 'b') AND r.state = 'running' -- 'retry'").uses.length,
      2,
    );
  });

  it("the storage module's hard-coded state literals equal the machine's", async () => {
    // Storage SQL takes most states from the machine (parameters, or targetOf/sourcesOf interpolated);
    // the literals written out by hand are listed here, each with what it must equal.
    const { readdir, readFile } = await import('node:fs/promises');
    const dir = new URL('../../src/storage/', import.meta.url);
    const found: string[] = [];
    const mismatches: string[] = [];
    for (const file of (await readdir(dir)).filter((name) => name.endsWith('.ts')).sort()) {
      const source = await readFile(new URL(file, dir), 'utf8');
      const explained: { from: number; to: number }[] = [];
      // LIVE_STATES is the live-key predicate of jobs_live_key_idx, repeated in ON CONFLICT and jobsLiveByKeys.
      for (const m of source.matchAll(/const LIVE_STATES = `([^`]*)`/g)) {
        found.push(`${file}: LIVE_STATES = ${m[1]}`);
        explained.push({ from: m.index, to: m.index + m[0].length });
        const listed = literals(m[1] as string);
        if (JSON.stringify([...listed].sort()) !== JSON.stringify([...LIVE].sort())) {
          mismatches.push(
            `${file}: LIVE_STATES has ${listed.join(', ')}; expected the states not tagged finished: ${LIVE.join(', ')}`,
          );
        }
      }
      // A new row's state, as insert returns it without reading it back: the column default, the machine's initial state.
      for (const m of source.matchAll(/state: '(\w+)',/g)) {
        found.push(`${file}: state: '${m[1]}' (a new row)`);
        explained.push({ from: m.index, to: m.index + m[0].length });
        if (m[1] !== initial) mismatches.push(`${file}: a new row's state is '${m[1]}'; expected ${initial}`);
      }
      for (const m of source.matchAll(/'(\w+)'/g)) {
        if (!(JOB_STATES as readonly string[]).includes(m[1] as string)) continue;
        if (explained.some(({ from, to }) => m.index >= from && m.index < to)) continue;
        const line = source.slice(0, m.index).split('\n').length;
        mismatches.push(`${file}:${line}: state literal ${m[0]} that no rule checks`);
      }
    }
    assert.ok(found.length > 0);
    assert.deepEqual(mismatches, []);
  });
});
