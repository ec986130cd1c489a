import { describe, expect, test } from "vitest";
import type { BlockName } from "./block-format.ts";
import { BlockIndex } from "./block-index.ts";

function name(obj: number, index: number, fileBytes = 100, writtenSec = 1000): BlockName {
  return { keyHi: obj >>> 3, keyLo: 7, verHi: obj, verLo: obj * 31, index, fileBytes, writtenSec };
}

/** Walks the LRU from the least recently used end by evicting a copy's worth: reads order via oldest()+remove. */
function lruOrder(ix: BlockIndex): number[] {
  const out: number[] = [];
  for (let s = ix.oldest(); s !== -1; s = ix.oldest()) {
    out.push(ix.nameOf(s).verHi * 1000 + ix.nameOf(s).index);
    ix.remove(s);
  }
  return out;
}

describe("BlockIndex", () => {
  test("add, find, remove, reuse, totals", () => {
    const ix = new BlockIndex();
    const a = ix.add(name(1, 0, 10), false, true);
    const b = ix.add(name(1, 1, 20), false, true);
    ix.add(name(2, 0, 30), false, true);
    expect(ix.add(name(1, 0, 10), false, true)).toBe(a);
    expect([ix.blockCount, ix.objectCount, ix.usedBytes]).toEqual([3, 2, 60]);
    expect(ix.find(1, 31, 1)).toBe(b);
    expect(ix.find(1, 31, 2)).toBe(-1);
    expect(ix.find(3, 93, 0)).toBe(-1);
    ix.remove(a);
    ix.remove(b);
    expect([ix.blockCount, ix.objectCount, ix.usedBytes]).toEqual([1, 1, 30]);
    expect(ix.find(1, 31, 0)).toBe(-1);
    const c = ix.add(name(4, 9, 5), false, true);
    expect([a, b]).toContain(c);
    expect(ix.nameOf(c)).toEqual(name(4, 9, 5));
  });

  test("LRU: touched blocks are newest; scanned blocks start oldest", () => {
    const ix = new BlockIndex();
    for (let i = 0; i < 4; i++) ix.add(name(i, 0), false, true);
    ix.touch(ix.find(0, 0, 0));
    ix.add(name(9, 0), false, false);
    expect(lruOrder(ix)).toEqual([9000, 1000, 2000, 3000, 0]);
  });

  test("pinned objects stay off the LRU until unpinned", () => {
    const ix = new BlockIndex();
    ix.add(name(1, 0), true, true);
    ix.add(name(1, 1), true, true);
    ix.add(name(2, 0), false, true);
    expect(ix.pinnedBlocks).toBe(2);
    expect(ix.nameOf(ix.oldest()).verHi).toBe(2);
    ix.repin(() => false);
    expect(ix.pinnedBlocks).toBe(0);
    ix.repin((hi) => hi === 2 >>> 3);
    expect(ix.pinnedBlocks).toBe(3);
    expect(ix.oldest()).toBe(-1);
  });

  test("stays consistent with a Map under 100k random operations", () => {
    const ix = new BlockIndex();
    const model = new Map<string, number>();
    let seed = 42;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (let i = 0; i < 100_000; i++) {
      const obj = rnd(5000);
      const index = rnd(4);
      const k = `${obj}/${index}`;
      if (rnd(3) === 0 && model.has(k)) {
        ix.remove(ix.find(obj, Math.imul(obj, 31) >>> 0, index));
        model.delete(k);
      } else if (!model.has(k)) {
        ix.add(name(obj, index, obj + index), false, rnd(2) === 0);
        model.set(k, obj + index);
      }
    }
    expect(ix.blockCount).toBe(model.size);
    expect(ix.usedBytes).toBe([...model.values()].reduce((a, b) => a + b, 0));
    for (const [k, bytes] of model) {
      const [obj = 0, index = 0] = k.split("/").map(Number);
      expect(ix.fileBytes(ix.find(obj, Math.imul(obj, 31) >>> 0, index))).toBe(bytes);
    }
    expect(lruOrder(ix)).toHaveLength(model.size);
  });

  test("reserve() grows once and keeps every entry findable", () => {
    const ix = new BlockIndex();
    for (let i = 0; i < 3000; i++) ix.add(name(i, 0), false, true);
    ix.reserve(50_000, 50_000);
    for (let i = 3000; i < 50_000; i++) ix.add(name(i, 0), false, true);
    for (let i = 0; i < 50_000; i++) expect(ix.find(i, Math.imul(i, 31) >>> 0, 0)).not.toBe(-1);
    expect(ix.blockCount).toBe(50_000);
  });

  test("costs well under 300 bytes per block at 200k blocks", () => {
    const ix = new BlockIndex();
    for (let i = 0; i < 200_000; i++) ix.add(name(i, 0, 4096), false, true);
    expect(ix.byteLength / ix.blockCount).toBeLessThan(300);
  });
});
