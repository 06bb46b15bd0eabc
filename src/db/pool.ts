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
  /** The held connection, or its taking (connect, then SET). */
  private taking?: Promise<DbClient>;
  private held?: DbClient;
  private active = 0;
  private readonly released = new WeakSet<DbClient>();
  // Held between statements: a connection lost meanwhile is dropped, never an unhandled 'error'.
  private readonly onError = (err: Error) => this.held && this.drop(this.held, err);

  constructor(
    private readonly db: Db,
    private readonly settings: Record<string, string>,
  ) {}

  async query<R extends pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>> {
    this.active++;
    let client: DbClient | undefined;
    try {
      client = await (this.taking ??= this.take());
      return await client.query<R>(config);
    } catch (err) {
      // A broken connection (no server answer, or class 08 / 57P: connection lost, server shutting
      // down) is dropped and the next statement takes another; a statement's own error (a
      // constraint, a conflict) was rolled back with its implicit transaction.
      if (client && (!(err instanceof pg.DatabaseError) || /^(08|57P)/.test(err.code ?? ''))) this.drop(client, err as Error);
      throw err;
    } finally {
      // A statement that follows at once (the writer's next batch) starts before this runs.
      if (--this.active === 0) setImmediate(() => this.giveBack());
    }
  }

  private async take(): Promise<DbClient> {
    let client: DbClient;
    try {
      client = await this.db.connect();
    } catch (err) {
      this.taking = undefined;
      throw err;
    }
    // The pool hands out the same client objects again: released once means "by this hold".
    this.released.delete(client);
    this.held = client;
    client.on('error', this.onError);
    try {
      await client.query(Object.entries(this.settings).map(([k, v]) => `SET ${k} = ${v}`).join('; '));
      return client;
    } catch (err) {
      this.drop(client, err as Error);
      throw err;
    }
  }

  /** Back to the pool (destroyed, with `err`), once. */
  private release(client: DbClient, err?: Error) {
    if (this.released.has(client)) return;
    this.released.add(client);
    client.off('error', this.onError);
    client.release(err);
  }

  /** Destroys a broken connection instead of handing it back; the next statement takes another. */
  private drop(client: DbClient, err: Error) {
    if (this.held === client) {
      this.held = undefined;
      this.taking = undefined;
    }
    this.release(client, err);
  }

  private giveBack() {
    const client = this.held;
    if (this.active || !client) return;
    this.held = undefined;
    this.taking = undefined;
    client.query(Object.keys(this.settings).map((k) => `RESET ${k}`).join('; ')).then(() => this.release(client), (err: Error) => this.release(client, err));
  }
}
