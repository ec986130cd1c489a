// A byte range still on its way from the origin: it lands in order in one buffer of its
// final size, and a reader can take any part of it as soon as that part has arrived. The
// read path streams cold bytes through this way (a far origin's block takes tens of ms to
// arrive, and the first READ needs only its first 128 KiB), instead of waiting for the
// whole block. Bytes, once arrived, never change: lending views of them is safe.

/** Memory for a range: a pool's reusable buffer (recycle() gives it back), or a fresh one. */
export interface RangeMemory {
  data: Uint8Array;
  recycle(): void;
}

/** Where ranges get their memory (a BufferPool). */
export interface RangeMemorySource {
  take(length: number): RangeMemory;
}

interface Waiter {
  end: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class ArrivingBytes {
  /** The range's length: where `done` ends. */
  readonly length: number;
  /** Resolves with all `length` bytes; rejects if they cannot all arrive. */
  readonly done: Promise<Uint8Array>;
  private readonly buffer: Uint8Array;
  private received = 0;
  private failure: unknown = undefined;
  private failed = false;
  private waiters: Waiter[] = [];
  private settle!: { resolve: (data: Uint8Array) => void; reject: (error: unknown) => void };
  private memory: RangeMemory | undefined;

  /** `memory` (at least `length` bytes) comes from a pool: whoever owns these bytes calls recycle() once nobody reads them. */
  constructor(length: number, memory?: RangeMemory) {
    this.length = length;
    if (memory && memory.data.length < length) throw new RangeError(`${memory.data.length} bytes of memory for a range of ${length}`);
    this.memory = memory;
    this.buffer = memory ? memory.data.subarray(0, length) : Buffer.allocUnsafe(length);
    this.done = new Promise<Uint8Array>((resolve, reject) => (this.settle = { resolve, reject }));
    // Nobody may ever wait for `done` (a reader that needed only a part): its failure is still reported to those who do.
    this.done.catch(() => undefined);
    if (length === 0) this.settle.resolve(this.buffer);
  }

  /** Bytes that have already arrived, complete. */
  static of(data: Uint8Array): ArrivingBytes {
    const bytes = new ArrivingBytes(data.length);
    bytes.push(data);
    return bytes;
  }

  /** Bytes that arrive all at once, when `whole` resolves (an origin that cannot stream). */
  static from(length: number, whole: Promise<Uint8Array>): ArrivingBytes {
    const bytes = new ArrivingBytes(length);
    whole.then(
      (data) => (data.length === length ? bytes.push(data) : bytes.fail(new RangeError(`expected ${length} bytes, got ${data.length}`))),
      (error: unknown) => bytes.fail(error),
    );
    return bytes;
  }

  /** How many bytes (from the start) have arrived. */
  get arrived(): number {
    return this.received;
  }

  /** Appends the next bytes of the range. More than the range holds is an error (nothing is kept of them). */
  push(chunk: Uint8Array): void {
    if (this.failed) return;
    if (this.received + chunk.length > this.length) {
      this.fail(new RangeError(`more than the ${this.length} bytes expected arrived`));
      return;
    }
    this.buffer.set(chunk, this.received);
    this.received += chunk.length;
    if (this.waiters.length > 0) {
      const ready = this.waiters.filter((w) => w.end <= this.received);
      if (ready.length > 0) {
        this.waiters = this.waiters.filter((w) => w.end > this.received);
        for (const w of ready) w.resolve();
      }
    }
    if (this.received === this.length) this.settle.resolve(this.buffer);
  }

  /** No more bytes will come: every waiter, and `done`, fail with `error`. */
  fail(error: unknown): void {
    if (this.failed || this.received === this.length) return;
    this.failed = true;
    this.failure = error;
    for (const w of this.waiters) w.reject(error);
    this.waiters = [];
    this.settle.reject(error);
  }

  /** Bytes [from, to) once they have arrived (a view: no copy). */
  async slice(from: number, to: number): Promise<Uint8Array> {
    if (from < 0 || to > this.length || from > to) throw new RangeError(`bytes ${from}-${to} are outside a range of ${this.length}`);
    if (to > this.received) {
      if (this.failed) throw this.failure;
      await new Promise<void>((resolve, reject) => this.waiters.push({ end: to, resolve, reject }));
    }
    return this.buffer.subarray(from, to);
  }

  /**
   * Gives pooled memory back once the range is over (all in, or failed) and no view of it is
   * in use: the pool hands it to the next range. Nothing is read from it afterwards.
   */
  recycle(): void {
    const memory = this.memory;
    this.memory = undefined;
    memory?.recycle();
  }

  /** The bytes from `from` that have arrived once at least one has (all of them up to `to`): a streaming reader's next piece. */
  async next(from: number, to: number = this.length): Promise<Uint8Array> {
    if (from >= to) return this.buffer.subarray(from, from);
    if (this.received <= from) await this.slice(from, from + 1);
    return this.buffer.subarray(from, Math.min(to, this.received));
  }
}
