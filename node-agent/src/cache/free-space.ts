// How many bytes the cache may hold so that its filesystem keeps `minFreeRatio` free:
// statfs at most once per interval (a put must not pay a syscall each), shared by
// concurrent callers, and forgotten at once after ENOSPC so the next put looks again.
import { statfs } from "node:fs/promises";
import { CacheFaultError } from "./block-cache.ts";

export class FreeSpaceBound {
  private readonly dir: string;
  private readonly minFreeRatio: number;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private boundBytes = Number.POSITIVE_INFINITY;
  private checkedAtMs = 0;
  private checking: Promise<void> | undefined;

  constructor(options: { dir: string; minFreeRatio: number; intervalMs: number; now: () => number }) {
    this.dir = options.dir;
    this.minFreeRatio = options.minFreeRatio;
    this.intervalMs = options.intervalMs;
    this.now = options.now;
  }

  /** Most bytes the cache may have on disk, as of the last check. */
  get bytes(): number {
    return this.boundBytes;
  }

  /** Re-reads free space if the last check is older than the interval. */
  refresh(cacheDiskBytes: () => number): Promise<void> {
    if (this.now() - this.checkedAtMs < this.intervalMs) return Promise.resolve();
    this.checking ??= (async () => {
      try {
        const s = await statfs(this.dir);
        const headroom = s.bavail * s.bsize - this.minFreeRatio * s.blocks * s.bsize;
        this.boundBytes = cacheDiskBytes() + headroom;
        this.checkedAtMs = this.now();
      } catch (err) {
        throw new CacheFaultError(`cannot check free space: ${this.dir}`, { cause: err });
      } finally {
        this.checking = undefined;
      }
    })();
    return this.checking;
  }

  /** The disk said it is full: check again before the next put. */
  invalidate(): void {
    this.checkedAtMs = 0;
  }
}
