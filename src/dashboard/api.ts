import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type JobEventType, jobMachine } from '../../machines/job.js';
import { runtimeMachine } from '../../machines/runtime.js';
import type { ListJobsOptions } from '../api/admin.js';
import type { Runtime } from '../api/runtime.js';
import { errorText } from '../core/error-text.js';
import { InvalidTransitionError, JobchartError, JobNotFoundError, ValidationError } from '../core/errors.js';
import { assertKnownKeys, optionNames } from '../core/known-keys.js';
import { type MachineGraph, machineGraph } from '../core/machine-graph.js';
import type { Job } from '../storage/job-row.js';
import { createMetricsHandler } from '../telemetry/prometheus.js';
import { drawStatechart } from './statechart-svg.js';

/** DashboardOptions configure `createDashboard`. */
export interface DashboardOptions {
  /** runtime is the started runtime whose database the dashboard shows and acts on. */
  runtime: Runtime;
  /** readOnly refuses every action (HTTP 403): the dashboard only shows (default false). */
  readOnly?: boolean;
  /**
   * authorize decides whether a request may be served at all (false: HTTP 403); it runs before
   * anything is read. Without it every request is served: mount the dashboard behind your own auth.
   */
  authorize?: (req: IncomingMessage) => boolean | Promise<boolean>;
}

const DASHBOARD_OPTION_NAMES = optionNames<DashboardOptions>({
  runtime: true,
  readOnly: true,
  authorize: true,
});

/** CSRF_HEADER is the request header every action must carry, holding the dashboard's token. */
export const CSRF_HEADER = 'x-jobchart-csrf';

// ACTIONS are the operator's events a job page offers, each by the name of its API call: the job
// machine says which of them its current state accepts.
const ACTIONS: Readonly<Record<string, JobEventType>> = {
  retry: 'RESTART',
  cancel: 'CANCEL',
  remove: 'REMOVE',
  reschedule: 'RESCHEDULE',
};

const BODY_LIMIT_BYTES = 64 * 1024;

/** HttpError is a request the dashboard refuses with a status and a message for the caller. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * createDashboard returns a Node request handler serving the dashboard's JSON API (and `/metrics`),
 * for `node:http`, Express or Fastify. Reads are GET: `/api/session` (the CSRF token actions need),
 * `/api/stats`, `/api/jobs` (the listJobs filter as query parameters), `/api/jobs/:id` (the job and
 * the actions its state allows), `/api/machines` (the job and runtime machines as graphs and SVG).
 * Actions are POST `/api/jobs/:id/{retry,cancel,remove,reschedule}` with the token in the
 * `x-jobchart-csrf` header (a header no cross-site form can send) and a JSON body.
 */
export function createDashboard(
  options: DashboardOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  if (typeof options !== 'object' || options === null)
    throw new ValidationError('createDashboard', 'an object { runtime, readOnly?, authorize? }', options);
  assertKnownKeys(options, DASHBOARD_OPTION_NAMES, 'createDashboard');
  const { runtime } = options;
  if (typeof (runtime as Partial<Runtime> | null)?.listJobs !== 'function')
    throw new ValidationError('createDashboard.runtime', 'a jobchart runtime', runtime);
  if (options.readOnly !== undefined && typeof options.readOnly !== 'boolean')
    throw new ValidationError('createDashboard.readOnly', 'a boolean', options.readOnly);
  if (options.authorize !== undefined && typeof options.authorize !== 'function')
    throw new ValidationError('createDashboard.authorize', 'a function (req) => boolean', options.authorize);
  const readOnly = options.readOnly ?? false;
  const token = randomBytes(24).toString('base64url');
  const metrics = createMetricsHandler({ runtime });
  // Drawn on first use; a failed drawing is tried again on the next request.
  let machines: Promise<Machines> | null = null;
  const drawn = () => {
    machines ??= machinesOf().catch((error: unknown) => {
      machines = null;
      throw error;
    });
    return machines;
  };
  const serve = async (req: IncomingMessage, res: ServerResponse) => {
    if (options.authorize && !(await options.authorize(req))) throw new HttpError(403, 'not authorized');
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (req.method === 'GET' && path === '/metrics') return metrics(req, res);
    if (req.method === 'GET')
      return sendJson(res, 200, await read(runtime, path, url.searchParams, drawn, token, readOnly));
    if (req.method !== 'POST') throw new HttpError(405, `${req.method} is not served: GET reads, POST acts`);
    const action = /^\/api\/jobs\/([^/]+)\/([a-z]+)$/.exec(path);
    if (!action) throw new HttpError(404, `no action at ${path}`);
    if (readOnly) throw new HttpError(403, 'this dashboard is read-only');
    if (!sameToken(req.headers[CSRF_HEADER], token))
      throw new HttpError(403, `expected the ${CSRF_HEADER} header of /api/session`);
    const body = await readJson(req);
    return sendJson(res, 200, { job: await act(runtime, action[1] as string, action[2] as string, body) });
  };
  return (req, res) => {
    serve(req, res).catch((error: unknown) => {
      const [status, message] = statusOf(error);
      sendJson(res, status, { error: message, code: error instanceof JobchartError ? error.code : null });
    });
  };
}

interface Machines {
  graphs: { job: ReturnType<typeof machineGraph>; runtime: ReturnType<typeof machineGraph> };
  svg: { job: string; runtime: string };
}

// machinesOf reads and draws both machines once: they do not change while the process runs.
async function machinesOf(): Promise<Machines> {
  const job = machineGraph(jobMachine);
  const runtime = machineGraph(runtimeMachine);
  return {
    graphs: { job, runtime },
    svg: { job: await drawStatechart(job), runtime: await drawStatechart(runtime) },
  };
}

async function read(
  runtime: Runtime,
  path: string,
  query: URLSearchParams,
  drawn: () => Promise<Machines>,
  token: string,
  readOnly: boolean,
): Promise<unknown> {
  if (path === '/api/session') return { csrfToken: token, readOnly };
  if (path === '/api/machines') return drawn();
  if (path === '/api/stats') {
    return runtime.stats({ queue: query.get('queue') ?? undefined, task: query.get('task') ?? undefined });
  }
  if (path === '/api/jobs') return runtime.listJobs(listOptionsOf(query));
  const one = /^\/api\/jobs\/([^/]+)$/.exec(path);
  if (one) {
    const job = await runtime.getJob(one[1] as string);
    if (!job) throw new JobNotFoundError(one[1] as string);
    return { job, actions: actionsOf(job, (await drawn()).graphs.job) };
  }
  throw new HttpError(404, `nothing at ${path}`);
}

// actionsOf lists the actions the job machine accepts in the job's state: exactly what its page offers.
function actionsOf(job: Job, graph: MachineGraph): string[] {
  const accepted = new Set(graph.transitions.filter((t) => t.source === job.state).map((t) => t.event));
  return Object.entries(ACTIONS)
    .filter(([, event]) => accepted.has(event))
    .map(([name]) => name);
}

// listOptionsOf reads the listJobs filter from query parameters; the runtime checks every value.
function listOptionsOf(query: URLSearchParams): ListJobsOptions {
  const options: Record<string, unknown> = {};
  const states = query.getAll('state');
  if (states.length > 0) options.state = states;
  const tags = query.getAll('tag');
  if (tags.length > 0) options.tags = tags;
  for (const name of ['task', 'queue', 'key', 'keyPrefix', 'cursor']) {
    const value = query.get(name);
    if (value !== null) options[name] = value;
  }
  for (const name of ['createdBefore', 'createdAfter', 'finishedBefore', 'finishedAfter']) {
    const value = query.get(name);
    if (value !== null) options[name] = new Date(value);
  }
  const limit = query.get('limit');
  if (limit !== null) options.limit = Number(limit);
  const known = new Set([
    'state',
    'tag',
    'task',
    'queue',
    'key',
    'keyPrefix',
    'cursor',
    'limit',
    'createdBefore',
    'createdAfter',
    'finishedBefore',
    'finishedAfter',
  ]);
  for (const name of query.keys()) {
    if (!known.has(name))
      throw new ValidationError(name, `one of the filter parameters ${[...known].join(', ')}`, name);
  }
  return options as ListJobsOptions;
}

async function act(
  runtime: Runtime,
  id: string,
  action: string,
  body: Record<string, unknown>,
): Promise<Job> {
  switch (action) {
    case 'retry':
      return runtime.retry(id);
    case 'cancel':
      return runtime.cancel(
        id,
        body.reason === undefined ? 'cancelled from the dashboard' : (body.reason as string),
      );
    case 'remove':
      return runtime.remove(id);
    case 'reschedule': {
      const runAt = body.runAt;
      if (runAt !== null && typeof runAt !== 'string')
        throw new ValidationError('runAt', 'an ISO 8601 time, or null to park the job', runAt);
      return runtime.reschedule(id, runAt === null ? null : new Date(runAt));
    }
    default:
      throw new HttpError(404, `no action ${action}: expected one of ${Object.keys(ACTIONS).join(', ')}`);
  }
}

function sameToken(given: string | string[] | undefined, token: string): boolean {
  if (typeof given !== 'string' || given.length !== token.length) return false;
  return timingSafeEqual(Buffer.from(given), Buffer.from(token));
}

// readJson reads a small JSON object body; an empty body is an empty object.
async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > BODY_LIMIT_BYTES)
      throw new HttpError(413, `expected a body of at most ${BODY_LIMIT_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'expected a JSON body');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new HttpError(400, 'expected a JSON object');
  return body as Record<string, unknown>;
}

function statusOf(error: unknown): [number, string] {
  if (error instanceof HttpError) return [error.status, error.message];
  if (error instanceof JobNotFoundError) return [404, error.message];
  if (error instanceof InvalidTransitionError) return [409, error.message];
  if (error instanceof ValidationError) return [400, error.message];
  // Anything else is the server's fault: its text only, never a stack or a connection string.
  return [500, errorText(error).message];
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(body);
}
