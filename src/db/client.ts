import pg from 'pg';
import type { Logger } from 'pino';

export type Db = pg.Pool;

export function createDb(url: string, logger?: Logger): Db {
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  // An idle connection dropped by the server (PostgreSQL restarted) is reported here; without a
  // listener it would crash the process. The pool discards it and the next query opens a new one.
  pool.on('error', (err) => logger?.warn({ err }, 'idle PostgreSQL connection lost'));
  return pool;
}

/**
 * Runs `work` in one transaction on one connection: committed if it resolves, rolled back if not.
 * The caller sees the error that failed the work; if the rollback fails too, the connection is in
 * an unknown state, so the pool destroys it instead of lending it out again.
 */
export async function inTransaction<T>(db: Db, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await db.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((rollbackErr: Error) => {
      broken = rollbackErr;
    });
    throw err;
  } finally {
    client.release(broken);
  }
}
