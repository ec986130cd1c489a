// Range bounds for a split listing: increasing in S3's (UTF-8) order, evenly spread, and
// none at all for a listing too small to be worth splitting.
import { describe, expect, it } from "vitest";
import { compareKeys, KEYS_PER_RANGE, listDestination, MAX_RANGES, rangeBounds } from "./ranged-list.ts";
import type { S3Destination } from "./s3-destination.ts";

describe("ranged listing bounds", () => {
  it("orders keys by UTF-8 bytes, as S3 lists them", () => {
    expect(compareKeys("d\u{1F600}", "d\uFFFD")).toBeGreaterThan(0);
    expect("d\u{1F600}" < "d\uFFFD").toBe(true);
    expect(compareKeys("a", "a")).toBe(0);
  });

  it("splits only listings large enough, into at most MAX_RANGES ranges", () => {
    const keys = (n: number) => Array.from({ length: n }, (_, i) => `p/${String(i).padStart(7, "0")}`).reverse();
    expect(rangeBounds(keys(2 * KEYS_PER_RANGE - 1))).toEqual([]);
    // Bounds come from a sample of the keys: each sits within 1% of the listing of its even split.
    const two = rangeBounds(keys(2 * KEYS_PER_RANGE));
    expect(two).toHaveLength(1);
    expect(Math.abs(Number(two[0]?.slice(2)) - KEYS_PER_RANGE)).toBeLessThanOrEqual(KEYS_PER_RANGE / 50);
    const bounds = rangeBounds(keys(100_000));
    expect(bounds).toHaveLength(MAX_RANGES - 1);
    for (let i = 1; i < bounds.length; i++) expect(compareKeys(bounds[i] ?? "", bounds[i - 1] ?? "")).toBeGreaterThan(0);
    bounds.forEach((b, i) => expect(Math.abs(Number(b.slice(2)) - ((i + 1) * 100_000) / MAX_RANGES)).toBeLessThanOrEqual(1_000));
  });
});

// The listing logic over an in-memory destination: only list() matters here (pages of 1,000
// keys in S3 order, like the edge's), and the question is whether ranges whose bounds arrive
// late still cover the prefix exactly once. The real edge runs this path in the e2e tests and
// bench:replicate; the timing cases below cannot be staged there.
describe("ranged listing with bounds that arrive late", () => {
  const keys = Array.from({ length: 30_000 }, (_, i) => `p/${String(i).padStart(6, "0")}`);
  function memoryDest() {
    const pages = { count: 0 };
    const dest = {
      async *list(prefix: string, options: { startAfter?: string } = {}) {
        let i = options.startAfter === undefined ? 0 : keys.findIndex((k) => compareKeys(k, options.startAfter ?? "") > 0);
        if (i < 0) return;
        while (i < keys.length) {
          pages.count++;
          await new Promise((r) => setTimeout(r, 1));
          for (const key of keys.slice(i, i + 1000)) if (key.startsWith(prefix)) yield { key, size: 1, etag: '"e"', lastModified: "" };
          i += 1000;
        }
      },
    } as unknown as S3Destination;
    return { dest, pages };
  }
  const later = (ms: number, value: readonly string[]) => new Promise<readonly string[]>((r) => setTimeout(() => r(value), ms));

  it.each([
    ["known at once", 0],
    ["after the first range passed some bounds", 12],
    ["after the first range finished", 400],
  ])("covers every key exactly once: bounds %s", async (_label, delayMs) => {
    const { dest, pages } = memoryDest();
    const bounds = rangeBounds(keys);
    const listed = await listDestination(dest, "p/", delayMs === 0 ? bounds : later(delayMs, bounds));
    expect([...listed.keys()].sort()).toEqual(keys);
    // Split ranges never re-list what another range covers: one page boundary of overlap per range at most.
    expect(pages.count).toBeLessThanOrEqual(keys.length / 1000 + bounds.length + 1);
  });
});
