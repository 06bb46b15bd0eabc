import pg from 'pg';

export type Db = pg.Pool;
export type DbClient = pg.PoolClient;
/** Anything that can run a query: the pool or a client inside a transaction. */
export type Queryable = Pick<pg.Pool, 'query'>;

// timestamptz as Date, bigint counts as numbers (counts stay far below 2^53).
pg.types.setTypeParser(20, (v) => Number(v));

export function createPool(connectionString: string, max = 10): Db {
  const pool = new pg.Pool({ connectionString, max, application_name: 'send-engine' });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  return pool;
}

/**
 * Runs fn inside BEGIN/COMMIT, rolling back on any error. `setLocal` (e.g. `plan_cache_mode =
 * force_generic_plan`) is set for the transaction in the same round trip as BEGIN.
 */
export async function withTransaction<T>(db: Db, fn: (client: DbClient) => Promise<T>, options: { setLocal?: string } = {}): Promise<T> {
  const client = await db.connect();
  try {
    await client.query(options.setLocal ? `BEGIN; SET LOCAL ${options.setLocal}` : 'BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/**
 * A connection kept for a run of back-to-back statements (a group-commit writer's), with session
 * settings (e.g. `{ plan_cache_mode: 'force_generic_plan' }`) that never reach the pool's other
 * users: set when the connection is taken, reset before it goes back, which is when a statement
 * ends with none after it. Each statement is its own implicit transaction, committed before its
 * answer: one round trip, where BEGIN; SET LOCAL ... / statement / COMMIT take three.
 */
export class SessionConnection {
  private client?: Promise<DbClient>;
  private active = 0;

  constructor(
    private readonly db: Db,
    private readonly settings: Record<string, string>,
  ) {}

  async query<R extends pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>> {
    this.active++;
    const taken = (this.client ??= this.take());
    try {
      return await (await taken).query<R>(config);
    } catch (err) {
      // A broken connection is dropped (the next statement takes another); a statement's own
      // error (a constraint, a conflict) was rolled back with its implicit transaction.
      if (!(err instanceof pg.DatabaseError) && this.client === taken) {
        this.client = undefined;
        taken.then((c) => c.release(err as Error), () => {});
      }
      throw err;
    } finally {
      // A statement that follows at once (the writer's next batch) starts before this runs.
      if (--this.active === 0) setImmediate(() => this.giveBack());
    }
  }

  private async take(): Promise<DbClient> {
    const client = await this.db.connect().catch((err) => {
      this.client = undefined;
      throw err;
    });
    try {
      await client.query(Object.entries(this.settings).map(([k, v]) => `SET ${k} = ${v}`).join('; '));
      return client;
    } catch (err) {
      this.client = undefined;
      client.release(err as Error);
      throw err;
    }
  }

  private giveBack() {
    const taken = this.client;
    if (this.active || !taken) return;
    this.client = undefined;
    taken.then(
      (c) => c.query(Object.keys(this.settings).map((k) => `RESET ${k}`).join('; ')).then(() => c.release(), (err: Error) => c.release(err)),
      () => {},
    );
  }
}
