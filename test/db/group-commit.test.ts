import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../../src/db/group-commit.ts';

describe('GroupCommit', () => {
  it('writes a lone item at once, and what arrives meanwhile together in the next write', async () => {
    const writes: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const group = new GroupCommit<number, string>(async (items) => {
      writes.push(items);
      if (writes.length === 1) await gate;
      return items.map((i) => `ok ${i}`);
    }, { maxBatch: 10, maxConcurrent: 1 });
    const first = group.submit(0);
    const rest = [1, 2, 3].map((i) => group.submit(i));
    expect(writes).toEqual([[0]]);
    release();
    expect(await first).toBe('ok 0');
    expect(await Promise.all(rest)).toEqual(['ok 1', 'ok 2', 'ok 3']);
    expect(writes).toEqual([[0], [1, 2, 3]]);
  });

  it('never puts two items with one key in one write, keeping their order', async () => {
    const writes: string[][] = [];
    const group = new GroupCommit<string, string>(async (items) => {
      writes.push(items);
      await new Promise((r) => setTimeout(r, 5));
      return items;
    }, { maxBatch: 10, maxConcurrent: 1, key: (s) => s.split('#')[0] });
    await Promise.all(['lone', 'a#1', 'a#2', 'b#1', 'a#3', 'c#1'].map((s) => group.submit(s)));
    expect(writes).toEqual([['lone'], ['a#1', 'b#1', 'c#1'], ['a#2'], ['a#3']]);
  });

  it('a failing write is retried item by item: only the bad item fails, its neighbours are written', async () => {
    const writes: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const group = new GroupCommit<number, number>(async (items) => {
      writes.push(items);
      if (writes.length === 1) await gate;
      if (items.includes(13)) throw new Error('bad item 13');
      return items;
    }, { maxBatch: 10, maxConcurrent: 1 });
    const first = group.submit(1);
    const results = Promise.allSettled([12, 13, 14].map((i) => group.submit(i)));
    release();
    await first;
    expect((await results).map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([12, 'bad item 13', 14]);
    expect(writes).toEqual([[1], [12, 13, 14], [12], [13], [14]]);
  });

  it("submitAll queues one caller's items together: they share a write instead of racing each other in lone ones", async () => {
    const writes: number[][] = [];
    const group = new GroupCommit<number, string>(async (items) => {
      writes.push(items);
      await new Promise((r) => setTimeout(r, 5));
      return items.map((i) => `ok ${i}`);
    }, { maxBatch: 3, maxConcurrent: 4 });
    expect(await group.submitAll([1, 2, 3, 4])).toEqual(['ok 1', 'ok 2', 'ok 3', 'ok 4']);
    // Item by item, four free writers would have taken one item each.
    expect(writes).toEqual([[1, 2, 3], [4]]);
  });
});
