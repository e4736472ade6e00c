import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { redactConnectionString } from '../src/core/logger.js';
import { createRuntime } from '../src/index.js';
import { databaseUrl, freshSchema } from './support/helpers.js';

describe('logging', () => {
  it('redacts the password of a connection string', () => {
    assert.equal(
      redactConnectionString('postgres://app:s3cret@db.example:5432/jobs?sslmode=require'),
      'postgres://app:***@db.example:5432/jobs?sslmode=require',
    );
    assert.equal(redactConnectionString('postgres://db/jobs?password=s3cret'), 'postgres://db/jobs');
  });

  it("never writes the connection string's password to the log, and logs per job with its id and task", async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const url = new URL(databaseUrl());
    url.password = url.password || 'unused-password';
    url.username = url.username || 'postgres';
    const runtime = createRuntime({
      connectionString: url.toString(),
      schema: freshSchema('logging'),
      logger: pino({ level: 'debug' }, sink),
      tasks: {
        chatty: async (_payload, ctx) => {
          ctx.logger.info('working');
        },
      },
    });
    await runtime.start();
    const job = await runtime.enqueue('chatty', {});
    await new Promise<void>((resolve) => runtime.events.on('job:succeeded', () => resolve()));
    await runtime.stop();
    const log = lines.join('');
    assert.ok(!log.includes(url.password), 'the password never appears');
    const working = lines.map((line) => JSON.parse(line)).find((entry) => entry.msg === 'working');
    assert.equal(working?.jobId, job.id);
    assert.equal(working?.task, 'chatty');
  });
});
