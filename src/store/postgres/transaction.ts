/** One transaction on a connection of its own: BEGIN, the work, COMMIT; ROLLBACK when anything throws. */
import type pg from 'pg';

/** Run `work` in a transaction on a client from `pool`, released afterwards either way; its error is rethrown after the rollback. */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
