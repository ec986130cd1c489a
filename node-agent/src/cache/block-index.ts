// The in-memory index of cached blocks, held in typed arrays only (no JS object or string
// per block), so it costs tens of bytes per block. Invariants: a block belongs to exactly
// one object version and an object record lives exactly while it has blocks; blocks of
// pinned objects and held blocks are off the LRU list and every other block is on it once; the byte and
// count totals always equal the sums over live slots. Slot numbers are reused after a
// removal, so callers must look a block up again after any await instead of keeping a slot.
import type { BlockName } from "./block-format.ts";
import { PairTable } from "./pair-table.ts";

const NONE = -1;
const PINNED = 1;
const IN_LRU = 1;
/** Held by a reader outside the cache (a passthrough file): off the LRU list like a pinned block. */
const HELD = 2;
const INITIAL_CAPACITY = 1024;

function growU32(a: Uint32Array, n: number): Uint32Array<ArrayBuffer> {
  const b = new Uint32Array(n);
  b.set(a);
  return b;
}
function growI32(a: Int32Array, n: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(n);
  b.set(a);
  return b;
}
function growU8(a: Uint8Array, n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  b.set(a);
  return b;
}

const KEY_BITS = 1 << 24;

function keyBit(keyHi: number, keyLo: number): number {
  return ((keyHi ^ keyLo) >>> 0) & (KEY_BITS - 1);
}

export class BlockIndex {
  // Object versions: hashes, live block count, flags. A free object slot links to the next through oBlocks.
  private oVerHi = new Uint32Array(INITIAL_CAPACITY);
  private oVerLo = new Uint32Array(INITIAL_CAPACITY);
  private oKeyHi = new Uint32Array(INITIAL_CAPACITY);
  private oKeyLo = new Uint32Array(INITIAL_CAPACITY);
  private oBlocks = new Int32Array(INITIAL_CAPACITY);
  private oFlags = new Uint8Array(INITIAL_CAPACITY);
  private oFree = NONE;
  private oHigh = 0;
  private readonly objects = new PairTable();
  /**
   * One bit per key-hash bucket (2^24 bits, 2 MiB): set when any version of a key gets a block,
   * never cleared. "May hold" can be wrong only towards yes (a shared bit, an evicted object),
   * which costs a HEAD before the read; "no" is certain, so a cold read may fetch the metadata
   * with the first block without risking a download of bytes already on disk.
   */
  private readonly keyBits = new Uint8Array(KEY_BITS / 8);

  // Blocks: owner object (NONE when free), index, file size, write time, LRU links. A free slot links through bNext.
  private bObj = new Int32Array(INITIAL_CAPACITY).fill(NONE);
  private bIndex = new Uint32Array(INITIAL_CAPACITY);
  private bBytes = new Uint32Array(INITIAL_CAPACITY);
  private bWritten = new Uint32Array(INITIAL_CAPACITY);
  private bPrev = new Int32Array(INITIAL_CAPACITY);
  private bNext = new Int32Array(INITIAL_CAPACITY);
  private bFlags = new Uint8Array(INITIAL_CAPACITY);
  private bFree = NONE;
  private bHigh = 0;
  private readonly blocks = new PairTable();

  /** Most and least recently used ends of the LRU list. */
  private head = NONE;
  private tail = NONE;

  blockCount = 0;
  objectCount = 0;
  usedBytes = 0;
  pinnedBlocks = 0;
  /** Bytes of held blocks (see hold()). */
  heldBytes = 0;

  /** Heap bytes held by the arrays (the whole index: there is nothing else per block). */
  get byteLength(): number {
    const o = this.oVerHi.byteLength * 4 + this.oBlocks.byteLength + this.oFlags.byteLength;
    const b = this.bObj.byteLength * 6 + this.bFlags.byteLength;
    return o + b + this.objects.byteLength + this.blocks.byteLength;
  }

  /** Grows every array and table once so that `blocks` blocks of `objects` objects fit (the scan's estimate). */
  reserve(blocks: number, objects: number): void {
    if (objects > this.oVerHi.length) this.growObjects(objects);
    if (blocks > this.bObj.length) this.growBlocks(blocks);
    this.objects.reserve(objects);
    this.blocks.reserve(blocks);
  }

  /** The slot of a block, or -1. */
  find(verHi: number, verLo: number, index: number): number {
    const o = this.objects.find(verHi, verLo);
    return o === NONE ? NONE : this.blocks.find(o, index);
  }

  /**
   * Indexes a block that is not indexed yet (returns the existing slot if it is). `recent`
   * puts it at the most recently used end; the scan adds at the least recently used end.
   */
  add(n: BlockName, pinned: boolean, recent: boolean): number {
    let o = this.objects.find(n.verHi, n.verLo);
    if (o === NONE) o = this.addObject(n, pinned);
    else {
      const existing = this.blocks.find(o, n.index);
      if (existing !== NONE) return existing;
    }
    const s = this.allocBlock();
    this.bObj[s] = o;
    this.bIndex[s] = n.index;
    this.bBytes[s] = n.fileBytes;
    this.bWritten[s] = n.writtenSec;
    this.bFlags[s] = 0;
    this.blocks.insert(s, o, n.index);
    this.oBlocks[o] = (this.oBlocks[o] ?? 0) + 1;
    this.blockCount++;
    this.usedBytes += n.fileBytes;
    if ((this.oFlags[o] ?? 0) & PINNED) this.pinnedBlocks++;
    else if (recent) this.linkHead(s);
    else this.linkTail(s);
    return s;
  }

  /** Takes a block off the LRU list until unhold(): eviction never picks it. */
  hold(slot: number): void {
    const f = this.bFlags[slot] ?? 0;
    if (f & HELD || (this.bObj[slot] ?? NONE) === NONE) return;
    if (f & IN_LRU) this.unlink(slot);
    this.bFlags[slot] = (this.bFlags[slot] ?? 0) | HELD;
    this.heldBytes += this.bBytes[slot] ?? 0;
  }

  /** Ends a hold(): the block goes back on the LRU list as just used (unless its object is pinned). */
  unhold(slot: number): void {
    const f = this.bFlags[slot] ?? 0;
    if (!(f & HELD)) return;
    this.bFlags[slot] = f & ~HELD;
    this.heldBytes -= this.bBytes[slot] ?? 0;
    if (!this.isPinned(slot)) this.linkHead(slot);
  }

  isHeld(slot: number): boolean {
    return ((this.bFlags[slot] ?? 0) & HELD) !== 0;
  }

  /** Whether the block in this slot belongs to a pinned object. */
  isPinned(slot: number): boolean {
    return (((this.oFlags[this.bObj[slot] ?? 0] ?? 0) & PINNED) !== 0);
  }

  remove(slot: number): void {
    const o = this.bObj[slot] ?? NONE;
    if (o === NONE) return;
    this.blocks.remove(o, this.bIndex[slot] ?? 0);
    if ((this.bFlags[slot] ?? 0) & IN_LRU) this.unlink(slot);
    if ((this.bFlags[slot] ?? 0) & HELD) this.heldBytes -= this.bBytes[slot] ?? 0;
    if ((this.oFlags[o] ?? 0) & PINNED) this.pinnedBlocks--;
    this.bFlags[slot] = 0;
    this.blockCount--;
    this.usedBytes -= this.bBytes[slot] ?? 0;
    this.bObj[slot] = NONE;
    this.bNext[slot] = this.bFree;
    this.bFree = slot;
    const left = (this.oBlocks[o] ?? 1) - 1;
    this.oBlocks[o] = left;
    if (left === 0) {
      this.objects.remove(this.oVerHi[o] ?? 0, this.oVerLo[o] ?? 0);
      this.objectCount--;
      this.oBlocks[o] = this.oFree;
      this.oFree = o;
    }
  }

  /** False only if no version of the key has had a block here since the index was built. */
  mayHoldKey(keyHi: number, keyLo: number): boolean {
    const bit = keyBit(keyHi, keyLo);
    return ((this.keyBits[bit >>> 3] ?? 0) & (1 << (bit & 7))) !== 0;
  }

  /** Marks a block as just used. */
  touch(slot: number): void {
    if (!((this.bFlags[slot] ?? 0) & IN_LRU) || this.head === slot) return;
    this.unlink(slot);
    this.linkHead(slot);
  }

  /** The least recently used unpinned block, or -1 when every block is pinned. */
  oldest(): number {
    return this.tail;
  }

  nameOf(slot: number): BlockName {
    const o = this.bObj[slot] ?? 0;
    return {
      keyHi: this.oKeyHi[o] ?? 0,
      keyLo: this.oKeyLo[o] ?? 0,
      verHi: this.oVerHi[o] ?? 0,
      verLo: this.oVerLo[o] ?? 0,
      index: this.bIndex[slot] ?? 0,
      fileBytes: this.bBytes[slot] ?? 0,
      writtenSec: this.bWritten[slot] ?? 0,
    };
  }

  fileBytes(slot: number): number {
    return this.bBytes[slot] ?? 0;
  }

  writtenSec(slot: number): number {
    return this.bWritten[slot] ?? 0;
  }

  /** Live block slots written before `sec` (for the TTL sweep). */
  writtenBefore(sec: number): number[] {
    const out: number[] = [];
    for (let s = 0; s < this.bHigh; s++) if ((this.bObj[s] ?? NONE) !== NONE && (this.bWritten[s] ?? 0) < sec) out.push(s);
    return out;
  }

  /** For each object version: its key hash, whether pinned, and one of its block slots. */
  objectsWithABlock(): Array<{ keyHi: number; keyLo: number; pinned: boolean; slot: number }> {
    const firstBlock = new Int32Array(this.oHigh).fill(NONE);
    for (let s = 0; s < this.bHigh; s++) {
      const o = this.bObj[s] ?? NONE;
      if (o !== NONE && firstBlock[o] === NONE) firstBlock[o] = s;
    }
    const out = [];
    for (let o = 0; o < this.oHigh; o++) {
      const slot = firstBlock[o] ?? NONE;
      if (slot === NONE) continue;
      out.push({ keyHi: this.oKeyHi[o] ?? 0, keyLo: this.oKeyLo[o] ?? 0, pinned: ((this.oFlags[o] ?? 0) & PINNED) !== 0, slot });
    }
    return out;
  }

  /** Re-derives every object's pinned flag from its key hash and moves blocks on or off the LRU list. */
  repin(isPinned: (keyHi: number, keyLo: number) => boolean): void {
    for (let o = 0; o < this.oHigh; o++) {
      if ((this.oBlocks[o] ?? 0) === 0 || this.objects.find(this.oVerHi[o] ?? 0, this.oVerLo[o] ?? 0) !== o) continue;
      this.oFlags[o] = isPinned(this.oKeyHi[o] ?? 0, this.oKeyLo[o] ?? 0) ? PINNED : 0;
    }
    this.pinnedBlocks = 0;
    for (let s = 0; s < this.bHigh; s++) {
      const o = this.bObj[s] ?? NONE;
      if (o === NONE) continue;
      const pinned = ((this.oFlags[o] ?? 0) & PINNED) !== 0;
      if (pinned) this.pinnedBlocks++;
      const listed = ((this.bFlags[s] ?? 0) & IN_LRU) !== 0;
      const belongs = !pinned && ((this.bFlags[s] ?? 0) & HELD) === 0;
      if (listed && !belongs) this.unlink(s);
      else if (!listed && belongs) this.linkHead(s);
    }
  }

  private addObject(n: BlockName, pinned: boolean): number {
    let o = this.oFree;
    if (o !== NONE) this.oFree = this.oBlocks[o] ?? NONE;
    else {
      if (this.oHigh === this.oVerHi.length) this.growObjects(this.oHigh * 2);
      o = this.oHigh++;
    }
    this.oVerHi[o] = n.verHi;
    this.oVerLo[o] = n.verLo;
    this.oKeyHi[o] = n.keyHi;
    this.oKeyLo[o] = n.keyLo;
    this.oBlocks[o] = 0;
    this.oFlags[o] = pinned ? PINNED : 0;
    const bit = keyBit(n.keyHi, n.keyLo);
    this.keyBits[bit >>> 3] = (this.keyBits[bit >>> 3] ?? 0) | (1 << (bit & 7));
    this.objects.insert(o, n.verHi, n.verLo);
    this.objectCount++;
    return o;
  }

  private allocBlock(): number {
    const free = this.bFree;
    if (free !== NONE) {
      this.bFree = this.bNext[free] ?? NONE;
      return free;
    }
    if (this.bHigh === this.bObj.length) this.growBlocks(this.bHigh * 2);
    return this.bHigh++;
  }

  private growObjects(cap: number): void {
    this.oVerHi = growU32(this.oVerHi, cap);
    this.oVerLo = growU32(this.oVerLo, cap);
    this.oKeyHi = growU32(this.oKeyHi, cap);
    this.oKeyLo = growU32(this.oKeyLo, cap);
    this.oBlocks = growI32(this.oBlocks, cap);
    this.oFlags = growU8(this.oFlags, cap);
  }

  private growBlocks(cap: number): void {
    const old = this.bObj.length;
    this.bObj = growI32(this.bObj, cap).fill(NONE, old);
    this.bIndex = growU32(this.bIndex, cap);
    this.bBytes = growU32(this.bBytes, cap);
    this.bWritten = growU32(this.bWritten, cap);
    this.bPrev = growI32(this.bPrev, cap);
    this.bNext = growI32(this.bNext, cap);
    this.bFlags = growU8(this.bFlags, cap);
  }

  private linkHead(s: number): void {
    this.bPrev[s] = NONE;
    this.bNext[s] = this.head;
    if (this.head !== NONE) this.bPrev[this.head] = s;
    else this.tail = s;
    this.head = s;
    this.bFlags[s] = (this.bFlags[s] ?? 0) | IN_LRU;
  }

  private linkTail(s: number): void {
    this.bNext[s] = NONE;
    this.bPrev[s] = this.tail;
    if (this.tail !== NONE) this.bNext[this.tail] = s;
    else this.head = s;
    this.tail = s;
    this.bFlags[s] = (this.bFlags[s] ?? 0) | IN_LRU;
  }

  private unlink(s: number): void {
    const p = this.bPrev[s] ?? NONE;
    const n = this.bNext[s] ?? NONE;
    if (p !== NONE) this.bNext[p] = n;
    else this.head = n;
    if (n !== NONE) this.bPrev[n] = p;
    else this.tail = p;
    this.bFlags[s] = (this.bFlags[s] ?? 0) & ~IN_LRU;
  }
}
