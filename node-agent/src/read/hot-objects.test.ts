// The S3 endpoint's small-object memory: what gets in (the second whole read of an object up
// to one block), what leaves (least recently used, within the byte budget), and that a new
// ETag is a different object.
import { describe, expect, it } from "vitest";
import type { ObjectInfo } from "../origin/object-origin.ts";
import { HotObjects } from "./hot-objects.ts";

const info = (key: string, size: number, etag = "e1"): ObjectInfo => ({ bucket: "b", key, etag, size, lastModified: new Date(0), contentType: "application/octet-stream", metadata: {} });

describe("HotObjects", () => {
  it("holds an object from its second read on, and serves its bytes", () => {
    const hot = new HotObjects({ budgetBytes: 1000, blockSizeBytes: 4096 });
    const a = info("a", 100);
    expect(hot.admits(a)).toBe(false);
    expect(hot.get(a)).toBeUndefined();
    expect(hot.admits(a)).toBe(true);
    hot.add(a, Buffer.alloc(100, 7));
    expect(hot.get(a)?.equals(Buffer.alloc(100, 7))).toBe(true);
    expect(hot.stats()).toEqual({ objects: 1, bytes: 100, budgetBytes: 1000, hits: 1 });
  });

  it("treats a new ETag as another object", () => {
    const hot = new HotObjects({ budgetBytes: 1000, blockSizeBytes: 4096 });
    hot.add(info("a", 10), Buffer.alloc(10));
    expect(hot.get(info("a", 10, "e2"))).toBeUndefined();
  });

  it("drops the least recently used past its budget, and never takes what is larger than a block or 1 MiB", () => {
    const hot = new HotObjects({ budgetBytes: 300, blockSizeBytes: 4096 });
    for (const k of ["a", "b", "c"]) hot.add(info(k, 100), Buffer.alloc(100));
    hot.get(info("a", 100)); // a is now the most recent: b goes first
    hot.add(info("d", 100), Buffer.alloc(100));
    expect(hot.get(info("b", 100))).toBeUndefined();
    expect(hot.get(info("a", 100))).toBeDefined();
    expect(hot.stats().bytes).toBe(300);
    expect(hot.admits(info("big", 5000))).toBe(false);
    expect(new HotObjects({ budgetBytes: 2 ** 30, blockSizeBytes: 4 * 2 ** 20 }).maxObjectBytes).toBe(2 ** 20);
  });

  it("refuses bytes that are not the whole object", () => {
    const hot = new HotObjects({ budgetBytes: 1000, blockSizeBytes: 4096 });
    hot.add(info("a", 100), Buffer.alloc(99));
    expect(hot.get(info("a", 100))).toBeUndefined();
  });
});
