import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { isTransientDbError, retryTransient } from '../../src/db/transient.ts';

describe('transient database errors at start', () => {
  it('retries deadlocks, serialization failures and a server still starting, then succeeds', async () => {
    const errors = [Object.assign(new Error('deadlock detected'), { code: '40P01' }), Object.assign(new Error('the database system is starting up'), { code: '57P03' })];
    const retried: string[] = [];
    let calls = 0;
    const result = await retryTransient('setup', async () => {
      calls++;
      const err = errors.shift();
      if (err) throw err;
      return 'up';
    }, (info) => retried.push(info.error));
    expect(result).toBe('up');
    expect(calls).toBe(3);
    expect(retried).toEqual(['deadlock detected', 'the database system is starting up']);
  });

  it('a connection refused by a server not yet listening is transient', async () => {
    const client = new pg.Client({ host: '127.0.0.1', port: 1, user: 'x', connectionTimeoutMillis: 2000 });
    const err = await client.connect().then(() => undefined, (e: unknown) => e);
    expect((err as { code?: string }).code).toBe('ECONNREFUSED');
    expect(isTransientDbError(err)).toBe(true);
  });

  it('any other error is thrown at once, unretried', async () => {
    let calls = 0;
    const failure = retryTransient('setup', async () => {
      calls++;
      throw Object.assign(new Error('relation "x" does not exist'), { code: '42P01' });
    });
    await expect(failure).rejects.toThrow('relation "x" does not exist');
    expect(calls).toBe(1);
  });

  it('gives up when the time allowed is spent, with the last error', async () => {
    let calls = 0;
    const failure = retryTransient('setup', async () => {
      calls++;
      throw Object.assign(new Error('could not serialize access'), { code: '40001' });
    }, () => {}, 150);
    await expect(failure).rejects.toThrow('could not serialize access');
    expect(calls).toBeLessThanOrEqual(2);
  });
});
