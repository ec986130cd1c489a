// Open file descriptors of recently read block files, so a warm get is one pread instead of
// open + read + close (three thread-pool round trips, most of a small GET's CPU). Invariants:
// an fd is closed only when no read holds it (so its number is never reused under a read);
// a path dropped from the cache (unlink, rename over) is forgotten at once, and its fd
// closes when its last reader is done. A stale fd can only ever show the bytes of the same
// block identity, and every read is still checked against the header CRCs by the caller (a
// file deleted behind the cache's back stays readable until its descriptor leaves the LRU).
import { close, open, read, readSync } from "node:fs";
import { promisify } from "node:util";

const openAsync = promisify(open);
const closeAsync = promisify(close);

interface Entry {
  fd: Promise<number>;
  users: number;
  /** No longer in the map: close once users reaches 0. */
  dropped: boolean;
}

/** Reads a whole (block) file through a small LRU of open descriptors. */
export class OpenFiles {
  private readonly maxOpen: number;
  private readonly syncReadMaxBytes: number;
  private readonly entries = new Map<string, Entry>();

  /**
   * maxOpen: descriptors kept open while idle (each holds an inode, and its disk space if
   * unlinked, until closed). syncReadMaxBytes (default 0: never): reads up to this size run
   * on the calling thread, as nginx's event loop does: a page-cached read of a small block
   * costs a few microseconds of copying, while a thread-pool round trip (wake a worker, wake
   * the loop back) costs more than that and, on a busy machine, most of a small GET's CPU.
   */
  constructor(options: { maxOpen: number; syncReadMaxBytes?: number }) {
    this.maxOpen = options.maxOpen;
    this.syncReadMaxBytes = options.syncReadMaxBytes ?? 0;
  }

  /**
   * Reads up to buf.length bytes of `path` from `position` (default: its start) into buf,
   * looping over short reads; returns the count, or undefined if the file does not exist.
   * `inPool` sends even a small read to the thread pool: for reads likely to miss the page
   * cache (a random piece of a big block), which on the calling thread would stall every
   * other request behind one disk read and allow no parallel I/O.
   */
  async read(path: string, buf: Buffer, position = 0, inPool = false): Promise<number | undefined> {
    let entry = this.entries.get(path);
    if (entry === undefined) {
      entry = { fd: openAsync(path, "r"), users: 0, dropped: false };
      this.entries.set(path, entry);
      this.trim();
    } else {
      // Most recently used last: Map iteration order is the LRU order.
      this.entries.delete(path);
      this.entries.set(path, entry);
    }
    entry.users++;
    try {
      let fd: number;
      try {
        fd = await entry.fd;
      } catch (err) {
        // A failed open is never cached: the next read tries again.
        if (this.entries.get(path) === entry) this.entries.delete(path);
        entry.dropped = true;
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw err;
      }
      let filled = 0;
      for (;;) {
        const n = !inPool && buf.length <= this.syncReadMaxBytes ? readSync(fd, buf, filled, buf.length - filled, position + filled) : await preadAsync(fd, buf, filled, buf.length - filled, position + filled);
        filled += n;
        // On a regular file a short read means end of file, so the usual case is one read.
        if (n === 0 || filled >= buf.length) return filled;
      }
    } finally {
      entry.users--;
      this.closeIfIdle(entry);
    }
  }

  /** Forgets a path whose file is being unlinked or replaced. */
  drop(path: string): void {
    const entry = this.entries.get(path);
    if (entry === undefined) return;
    this.entries.delete(path);
    entry.dropped = true;
    this.closeIfIdle(entry);
  }

  /** Closes every idle descriptor (those in use close when their reads end). */
  dropAll(): void {
    for (const path of [...this.entries.keys()]) this.drop(path);
  }

  get openCount(): number {
    return this.entries.size;
  }

  private trim(): void {
    for (const path of this.entries.keys()) {
      if (this.entries.size <= this.maxOpen) return;
      this.drop(path);
    }
  }

  private closeIfIdle(entry: Entry): void {
    if (!entry.dropped || entry.users > 0) return;
    entry.users = -1; // closed once only
    entry.fd.then(
      (fd) => closeAsync(fd),
      () => undefined, // never opened: nothing to close
    ).catch(() => undefined); // close of a read-only fd cannot lose data; nothing to do about it
  }
}

function preadAsync(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}
