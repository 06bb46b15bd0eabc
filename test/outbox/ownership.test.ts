import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// The ownership rule of docs/architecture.md: src/outbox/ owns `messages`. Every statement that
// writes it lives there (named statements and CTE fragments the callers compose), or in
// src/db/functions/ (trigger bodies). A source scan, because a writer elsewhere works fine until
// the status vocabulary or the wake-up changes and it is the one place nobody updated.
const SRC = path.resolve(import.meta.dirname, '../../src');
const OWNERS = ['outbox', path.join('db', 'functions')].map((d) => path.join(SRC, d) + path.sep);
const WRITES_MESSAGES = /\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?|MERGE\s+INTO|COPY)\s+(?:ONLY\s+)?(?:public\.)?messages\b/gi;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const file = path.join(dir, e.name);
    return e.isDirectory() ? sources(file) : /\.(ts|sql)$/.test(e.name) ? [file] : [];
  });
}

/** Comments may name a statement (`… UPDATE messages …` in prose); only code counts. */
const code = (text: string) => text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|\s)(\/\/|--)\s.*$/gm, '$1');

function writers(file: string): string[] {
  return [...code(readFileSync(file, 'utf8')).matchAll(WRITES_MESSAGES)].map((m) => `${path.relative(SRC, file)}: ${m[0].replace(/\s+/g, ' ')}`);
}

describe('src/outbox owns the messages table', () => {
  const files = sources(SRC);

  it('no file outside src/outbox/ and src/db/functions/ writes messages', () => {
    const outside = files.filter((f) => !OWNERS.some((o) => f.startsWith(o))).flatMap(writers);
    expect(outside).toEqual([]);
  });

  it("the scan sees the outbox's own statements (so the test above can fail)", () => {
    const found = files.filter((f) => f.startsWith(OWNERS[0])).flatMap(writers).map((w) => w.replace(/:.*?(INSERT|UPDATE).*/i, ': $1'));
    for (const w of ['outbox/enqueue.ts: INSERT', 'outbox/claim.ts: UPDATE', 'outbox/outcomes.ts: UPDATE', 'outbox/settle.ts: UPDATE', 'outbox/advance.ts: UPDATE', 'outbox/scheduled.ts: UPDATE']) {
      expect(found).toContain(w);
    }
    // Written the way a producer might, across lines and in lower case.
    expect([...code('await db.query(`update\n   messages SET status = $1`) // UPDATE messages in prose').matchAll(WRITES_MESSAGES)]).toHaveLength(1);
  });
});
