// Back-pressure for a run: a counting semaphore (objects in flight), a byte budget (bytes
// held in memory by all copies together) and a token-bucket rate limit (source bytes per
// second). Each is a small class instance owned by one run; nothing is module-global.

/** Counting semaphore over abstract units; a request larger than the capacity waits for
 * everything else to drain, then runs alone (so one huge part can never deadlock). */
export class Budget {
  readonly capacity: number;
  #used = 0;
  #waiters: Array<{ units: number; resolve: () => void }> = [];

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get used(): number {
    return this.#used;
  }

  async acquire(units: number): Promise<() => void> {
    const want = Math.min(units, this.capacity);
    if (this.#waiters.length === 0 && this.#used + want <= this.capacity) {
      this.#used += want;
    } else {
      await new Promise<void>((resolve) => this.#waiters.push({ units: want, resolve }));
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#used -= want;
      this.#drain();
    };
  }

  #drain(): void {
    // First come, first served: a large waiter is not starved by a stream of small ones.
    for (let next = this.#waiters[0]; next && this.#used + next.units <= this.capacity; next = this.#waiters[0]) {
      this.#waiters.shift();
      this.#used += next.units;
      next.resolve();
    }
  }
}

/** Token bucket: `take(n)` resolves when n more bytes fit under the rate (one second of burst). */
export class RateLimit {
  readonly bytesPerSecond: number;
  #tokens: number;
  #last = performance.now();
  #queue: Promise<void> = Promise.resolve();

  constructor(bytesPerSecond: number) {
    this.bytesPerSecond = bytesPerSecond;
    this.#tokens = bytesPerSecond;
  }

  take(bytes: number): Promise<void> {
    const turn = this.#queue.then(async () => {
      const now = performance.now();
      this.#tokens = Math.min(this.bytesPerSecond, this.#tokens + ((now - this.#last) / 1000) * this.bytesPerSecond);
      this.#last = now;
      this.#tokens -= bytes;
      if (this.#tokens < 0) {
        const waitMs = (-this.#tokens / this.bytesPerSecond) * 1000;
        await new Promise((r) => setTimeout(r, waitMs));
        this.#tokens = 0;
        this.#last = performance.now();
      }
    });
    this.#queue = turn;
    return turn;
  }
}

/** Runs `work` over items with at most `limit` in flight; resolves when all have settled. */
export async function forEachLimit<T>(items: Iterable<T>, limit: number, work: (item: T) => Promise<void>, signal?: AbortSignal): Promise<void> {
  const iterator = items[Symbol.iterator]();
  const worker = async () => {
    for (let next = iterator.next(); !next.done; next = iterator.next()) {
      if (signal?.aborted) return;
      await work(next.value);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
}
