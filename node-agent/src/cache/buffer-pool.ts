// A free list of equal-sized buffers for whole block files, so a warm read fills memory
// whose pages are already mapped instead of a fresh multi-MiB allocation (mmap-backed,
// faulted in page by page, then unmapped by the GC) on every get. Invariant: a buffer is
// handed out to one holder at a time; one that is never given back is simply collected.

export class BufferPool {
  /** Bytes of every buffer this pool hands out. */
  readonly sizeBytes: number;
  private readonly maxIdle: number;
  private readonly idle: Buffer[] = [];

  /** maxIdle: buffers kept for reuse when given back (more are dropped to the GC). */
  constructor(options: { sizeBytes: number; maxIdle: number }) {
    this.sizeBytes = options.sizeBytes;
    this.maxIdle = options.maxIdle;
  }

  acquire(): Buffer {
    // allocUnsafeSlow: a buffer of its own (never a slice of Node's shared small-buffer pool), safe to recycle.
    return this.idle.pop() ?? Buffer.allocUnsafeSlow(this.sizeBytes);
  }

  /** Takes a buffer back; the caller must not touch it afterwards. */
  release(buf: Buffer): void {
    if (buf.length === this.sizeBytes && this.idle.length < this.maxIdle) this.idle.push(buf);
  }

  get idleCount(): number {
    return this.idle.length;
  }
}
