// A hash table from a pair of 32-bit keys to a slot number, in one Int32Array: the block
// index's lookups (object version → object slot, object slot + block index → block slot)
// without a JS object or string per entry.
const NONE = -1;
const INITIAL_CAPACITY = 1024;

/** 32-bit mix of two words (murmur3 finalizer): the home bucket of a key pair. */
function mix(x: number, y: number): number {
  let h = Math.imul(x ^ Math.imul(y, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * Open addressing (linear probing, backward-shift deletion) from a pair of 32-bit keys to a
 * slot. Each entry holds [slot, keyA, keyB] inline, so a probe touches one cache line and
 * calls nothing.
 */
export class PairTable {
  private table = new Int32Array(INITIAL_CAPACITY * 2 * 3).fill(NONE);
  private mask = INITIAL_CAPACITY * 2 - 1;
  private size = 0;

  get byteLength(): number {
    return this.table.byteLength;
  }

  find(x: number, y: number): number {
    const t = this.table;
    const a = x | 0;
    const b = y | 0;
    for (let i = mix(a, b) & this.mask; ; i = (i + 1) & this.mask) {
      const s = t[i * 3] ?? NONE;
      if (s === NONE || (t[i * 3 + 1] === a && t[i * 3 + 2] === b)) return s;
    }
  }

  /** Grows now (one rehash) so that n entries fit without further growth. */
  reserve(n: number): void {
    let cap = this.mask + 1;
    while (n * 4 > cap * 3) cap *= 2;
    if (cap > this.mask + 1) this.resize(cap);
  }

  insert(slot: number, x: number, y: number): void {
    if ((this.size + 1) * 4 > (this.mask + 1) * 3) this.resize((this.mask + 1) * 2);
    this.place(slot, x | 0, y | 0);
    this.size++;
  }

  remove(x: number, y: number): void {
    const t = this.table;
    const a = x | 0;
    const b = y | 0;
    let i = mix(a, b) & this.mask;
    for (; ; i = (i + 1) & this.mask) {
      if ((t[i * 3] ?? NONE) === NONE) return;
      if (t[i * 3 + 1] === a && t[i * 3 + 2] === b) break;
    }
    // Shift later members of the probe run back so no lookup stops early at a hole.
    for (let j = (i + 1) & this.mask; ; j = (j + 1) & this.mask) {
      if ((t[j * 3] ?? NONE) === NONE) break;
      const home = mix(t[j * 3 + 1] ?? 0, t[j * 3 + 2] ?? 0) & this.mask;
      const movable = j > i ? home <= i || home > j : home <= i && home > j;
      if (movable) {
        t.copyWithin(i * 3, j * 3, j * 3 + 3);
        i = j;
      }
    }
    t[i * 3] = NONE;
    this.size--;
  }

  private place(slot: number, a: number, b: number): void {
    const t = this.table;
    let i = mix(a, b) & this.mask;
    while ((t[i * 3] ?? NONE) !== NONE) i = (i + 1) & this.mask;
    t[i * 3] = slot;
    t[i * 3 + 1] = a;
    t[i * 3 + 2] = b;
  }

  private resize(n: number): void {
    const old = this.table;
    this.table = new Int32Array(n * 3).fill(NONE);
    this.mask = n - 1;
    for (let i = 0; i < old.length; i += 3) {
      const s = old[i] ?? NONE;
      if (s !== NONE) this.place(s, old[i + 1] ?? 0, old[i + 2] ?? 0);
    }
  }
}
