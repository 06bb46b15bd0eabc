export interface GroupCommitOptions<I> {
  /** Items per write at most. */
  maxBatch: number;
  /** Writes in flight at once. */
  maxConcurrent: number;
  /** Items with equal keys never share a write (a statement may not touch one row twice): the later waits for the next. */
  key?: (item: I) => string;
}

interface Pending<I, O> {
  item: I;
  resolve: (o: O) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit: items from concurrent callers that arrive while earlier writes are in flight are
 * written together by the next one (`write`: ONE statement for all of them, so one commit and
 * one WAL flush), and each caller's promise settles only when that statement has committed. A
 * lone item is written at once, so latency stays that of a single write while throughput grows
 * with load. A failing write of several items is retried item by item, so one bad item cannot
 * fail its neighbours (its own error reaches only its caller).
 */
export class GroupCommit<I, O> {
  private queue: Pending<I, O>[] = [];
  private running = 0;

  constructor(
    private readonly write: (items: I[]) => Promise<O[]>,
    private readonly options: GroupCommitOptions<I>,
  ) {}

  submit(item: I): Promise<O> {
    const result = new Promise<O>((resolve, reject) => this.queue.push({ item, resolve, reject }));
    this.pump();
    return result;
  }

  /** Several items of one caller, queued together so they share a write (when maxBatch allows). */
  submitAll(items: I[]): Promise<O[]> {
    const results = Promise.all(items.map((item) => new Promise<O>((resolve, reject) => this.queue.push({ item, resolve, reject }))));
    this.pump();
    return results;
  }

  private pump() {
    while (this.running < this.options.maxConcurrent && this.queue.length) {
      const batch = this.take();
      this.running++;
      void this.flush(batch).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  /** The oldest items, up to maxBatch, at most one per key (the order of equal keys is kept). */
  private take(): Pending<I, O>[] {
    const { key, maxBatch } = this.options;
    if (!key) return this.queue.splice(0, maxBatch);
    const batch: Pending<I, O>[] = [];
    const rest: Pending<I, O>[] = [];
    const seen = new Set<string>();
    for (const p of this.queue) {
      const k = key(p.item);
      if (batch.length < maxBatch && !seen.has(k)) {
        seen.add(k);
        batch.push(p);
      } else {
        seen.add(k);
        rest.push(p);
      }
    }
    this.queue = rest;
    return batch;
  }

  private async flush(batch: Pending<I, O>[]): Promise<void> {
    let results: O[];
    try {
      results = await this.write(batch.map((p) => p.item));
    } catch (err) {
      if (batch.length === 1) return batch[0].reject(err);
      await Promise.all(batch.map((p) => this.flush([p])));
      return;
    }
    batch.forEach((p, i) => p.resolve(results[i]));
  }
}
