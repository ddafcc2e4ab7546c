import { afterAll, describe, expect, it } from 'vitest';
import { createDb, inTransaction } from './client.ts';

// Only sessions are used here, no tables: the server's own database will do.
const db = createDb('postgres://postgres@127.0.0.1:5432/postgres');
afterAll(() => db.end());

describe('inTransaction', () => {
  it('reports the error that failed the work when the rollback fails too, and drops the connection', async () => {
    const failure = new Error('the work failed');
    await expect(
      inTransaction(db, async (client) => {
        client.on('error', () => undefined); // the lost connection also reports itself here
        await client.query('SELECT pg_terminate_backend(pg_backend_pid())').catch(() => undefined);
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(db.totalCount).toBe(0);
    expect(
      await inTransaction(db, async (client) => (await client.query('SELECT 1 AS one')).rows[0]),
    ).toEqual({
      one: 1,
    });
  });
});
