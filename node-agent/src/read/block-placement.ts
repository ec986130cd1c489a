// Which blocks a node keeps after filling them. Alone, a node keeps everything it reads. In
// a pool, a node keeps its own share (the blocks it owns), and of everything else only a
// bounded near copy of what it read last, so N nodes hold about one copy of a dataset
// (N times the capacity) instead of N copies of the same hot part.
import type { BlockId } from "../cache/block-cache.ts";

/** "own": keep like any block; "near": keep as a bounded near copy; "pass": serve, keep nothing. */
export type Placement = "own" | "near" | "pass";

export interface BlockPlacement {
  placeOf(id: BlockId): Placement;
  /** A near copy was stored: returns the near copies to drop to stay within the bound. */
  admitNear(id: BlockId, bytes: number): BlockId[];
  /** A near copy was read again (a hit): it becomes the most recently used. */
  touchNear(id: BlockId): void;
}

const idKey = (id: BlockId) => `${id.bucket}\n${id.key}\n${id.etag}\n${id.index}`;

/** The near copies a node holds, least recently used first, within a byte bound. */
export class NearCopies {
  private readonly copies = new Map<string, { id: BlockId; bytes: number }>();
  private heldBytes = 0;
  readonly boundBytes: number;

  constructor(boundBytes: number) {
    this.boundBytes = boundBytes;
  }

  get bytes(): number {
    return this.heldBytes;
  }

  get count(): number {
    return this.copies.size;
  }

  admit(id: BlockId, bytes: number): BlockId[] {
    const k = idKey(id);
    const known = this.copies.get(k);
    if (known) {
      this.copies.delete(k);
      this.heldBytes -= known.bytes;
    }
    this.copies.set(k, { id, bytes });
    this.heldBytes += bytes;
    const dropped: BlockId[] = [];
    for (const [key, copy] of this.copies) {
      if (this.heldBytes <= this.boundBytes) break;
      this.copies.delete(key);
      this.heldBytes -= copy.bytes;
      dropped.push(copy.id);
    }
    return dropped;
  }

  touch(id: BlockId): void {
    const k = idKey(id);
    const copy = this.copies.get(k);
    if (!copy) return;
    this.copies.delete(k);
    this.copies.set(k, copy);
  }
}
