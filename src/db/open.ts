import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { startEmbeddedDatabase, type EmbeddedDatabase } from './embedded.ts';
import { migrate } from './migrate.ts';
import { createPool, type Db } from './pool.ts';
import { retryTransient } from './transient.ts';

export interface OpenDatabase {
  db: Db;
  url: string;
  /** The embedded server, when there is no DATABASE_URL. */
  embedded?: EmbeddedDatabase;
  /** Closes the pool, then stops the embedded server if this process owns it. */
  close(): Promise<void>;
}

/**
 * Connects to DATABASE_URL, or starts the embedded server; applies pending migrations. Transient
 * errors at start (the server still starting, a deadlock beside other processes) are retried.
 */
export async function openDatabase(config: Config, options: { migrate?: boolean; poolSize?: number; logger?: Logger } = {}): Promise<OpenDatabase> {
  const embedded = config.databaseUrl
    ? undefined
    : await startEmbeddedDatabase(config.dataDir, config.embeddedPgPort, {
        log: (line) => options.logger?.warn(line),
        readyTimeoutSeconds: config.embeddedPgStartTimeoutSeconds,
      });
  const url = config.databaseUrl ?? embedded!.url;
  const db = createPool(url, options.poolSize);
  try {
    if (options.migrate !== false) {
      await retryTransient('migrate', () => migrate(db), (info) => options.logger?.warn(info, 'database not ready; retrying'));
    }
  } catch (err) {
    await db.end();
    await embedded?.stop();
    throw err;
  }
  return {
    db,
    url,
    embedded,
    async close() {
      await db.end();
      await embedded?.stop();
    },
  };
}
