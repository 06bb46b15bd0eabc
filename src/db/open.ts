import type { Config } from '../config.ts';
import { startEmbeddedDatabase } from './embedded.ts';
import { migrate } from './migrate.ts';
import { createPool, type Db } from './pool.ts';

export interface OpenDatabase {
  db: Db;
  url: string;
  embedded: boolean;
  close(): Promise<void>;
}

/** Connects to DATABASE_URL, or starts the embedded server; applies pending migrations. */
export async function openDatabase(config: Config, options: { migrate?: boolean; poolSize?: number } = {}): Promise<OpenDatabase> {
  const embedded = config.databaseUrl ? undefined : await startEmbeddedDatabase(config.dataDir, config.embeddedPgPort);
  const url = config.databaseUrl ?? embedded!.url;
  const db = createPool(url, options.poolSize);
  try {
    if (options.migrate !== false) await migrate(db);
  } catch (err) {
    await db.end();
    await embedded?.stop();
    throw err;
  }
  return {
    db,
    url,
    embedded: Boolean(embedded),
    async close() {
      await db.end();
      await embedded?.stop();
    },
  };
}
