import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../src/db/client.ts';
import { createTestEnv, eventually, type TestEnv } from './support/env.ts';
import { BIN, freePort, type MeterlineProcess, startMeterline } from './support/process.ts';

let env: TestEnv;
const running: MeterlineProcess[] = [];
const admin = createDb('postgres://postgres@127.0.0.1:5432/postgres');
const emptyDb = `mlt_empty_${Date.now().toString(36)}`;

beforeAll(async () => {
  env = await createTestEnv();
  await admin.query(`CREATE DATABASE ${emptyDb}`);
});

afterAll(async () => {
  for (const p of running) p.child.kill('SIGKILL');
  await admin.query(`DROP DATABASE IF EXISTS ${emptyDb} WITH (FORCE)`);
  await admin.end();
  await env.cleanup();
});

/** `meterline keys …` as an operator runs it: exit code, stdout and stderr. */
async function cli(args: string[], processEnv: NodeJS.ProcessEnv = env.processEnv) {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, 'keys', ...args], {
      env: processEnv,
      encoding: 'utf8',
    });
    return { status: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { status: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function startApi() {
  const port = await freePort();
  const p = startMeterline('api', { ...env.processEnv, PORT: String(port), HOST: '127.0.0.1' });
  running.push(p);
  const base = `http://127.0.0.1:${port}`;
  await eventually(
    async () => (await fetch(`${base}/healthz`).catch(() => null))?.ok === true,
    `api on ${port}: ${p.output()}`,
  );
  return base;
}

const call = (base: string, key: string) =>
  fetch(`${base}/api/v1/meters`, { headers: { authorization: `Bearer ${key}` } }).then((r) => r.status);

describe('meterline keys list and revoke', () => {
  it('lists keys without the key or its hash, and revokes by id once', async () => {
    const first = await env.keys.create('listed', 'ci\tpipeline');
    const second = await env.keys.create('listed', 'laptop');
    await env.keys.create('other-ns', 'not shown');

    const listed = await cli(['list', '--namespace', 'listed']);
    expect(listed.status, listed.stderr).toBe(0);
    const lines = listed.stdout.trim().split('\n');
    expect(lines[0]).toBe('id\tprefix\tdescription\tcreated\trevoked');
    expect(lines.slice(1).map((l) => l.split('\t'))).toEqual([
      [first.id, first.prefix, 'ci pipeline', expect.stringMatching(/^\d{4}-.*Z$/), '-'],
      [second.id, second.prefix, 'laptop', expect.stringMatching(/^\d{4}-.*Z$/), '-'],
    ]);
    expect(listed.stdout).not.toContain(first.key);
    expect(listed.stdout).not.toContain('not shown');

    const revoked = await cli(['revoke', first.id]);
    expect(revoked.status, revoked.stderr).toBe(0);
    expect(revoked.stderr).toContain(`API key ${first.id}`);
    expect(await env.keys.authenticate(first.key)).toBeNull();
    expect(await env.keys.authenticate(second.key)).toBe('listed');

    const again = await cli(['revoke', '--id', first.id]);
    expect(again.status).toBe(0);
    expect(again.stderr).toContain('already revoked');
    const after = (await cli(['list', '--namespace', 'listed'])).stdout.trim().split('\n');
    expect(after[1]?.split('\t')[4]).toMatch(/^\d{4}-.*Z$/);
    expect(after[2]?.split('\t')[4]).toBe('-');

    const unknown = await cli(['revoke', '987654321']);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr.trim()).toBe('no API key with id 987654321');
    expect((await cli(['revoke', 'ml_abc'])).status).toBe(2);
  });

  it('a revoked key is refused within one second by every api process that had it cached', async () => {
    const [a, b] = await Promise.all([startApi(), startApi()]);
    const { key, id } = await env.keys.create('revoke-me');
    // Both processes have just found the key valid, so both hold it in their cache.
    expect([await call(a, key), await call(b, key)]).toEqual([200, 200]);
    const revokedAt = Date.now();
    await env.keys.revoke(id);
    await new Promise((r) => setTimeout(r, revokedAt + 1_000 - Date.now()));
    // Every request started one second after the revoke is refused, on both processes.
    expect([await call(a, key), await call(b, key)]).toEqual([401, 401]);
  });
});

describe('meterline keys on a database that was never migrated', () => {
  const noStack = (text: string) => expect(text).not.toMatch(/^\s+at /m);

  it.each([
    ['does not exist', 'mlt_never_created_db'],
    ['exists but is empty', emptyDb],
  ])('says in one line to run migrate when the database %s', async (_, database) => {
    const processEnv = { ...env.processEnv, DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${database}` };
    for (const args of [
      ['create', '--namespace', 'acme'],
      ['list', '--namespace', 'acme'],
      ['revoke', '1'],
    ]) {
      const res = await cli(args, processEnv);
      expect(res.status, args.join(' ')).toBe(1);
      expect(res.stdout).toBe('');
      expect(res.stderr.trim().split('\n')).toEqual([
        `PostgreSQL database ${database} is not set up: run \`meterline migrate\` first (DATABASE_URL)`,
      ]);
      noStack(res.stderr);
    }
  });

  it('says in one line when PostgreSQL cannot be reached', async () => {
    const port = await freePort();
    const res = await cli(['list', '--namespace', 'acme'], {
      ...env.processEnv,
      DATABASE_URL: `postgres://postgres:secret@127.0.0.1:${port}/meterline`,
    });
    expect(res.status).toBe(1);
    expect(res.stderr.trim()).toBe(
      `cannot reach PostgreSQL at 127.0.0.1:${port} (ECONNREFUSED); check DATABASE_URL and that the server runs`,
    );
  });
});
