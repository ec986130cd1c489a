// Range bounds for a split listing: increasing in S3's (UTF-8) order, evenly spread, and
// none at all for a listing too small to be worth splitting.
import { describe, expect, it } from "vitest";
import { compareKeys, KEYS_PER_RANGE, MAX_RANGES, rangeBounds } from "./ranged-list.ts";

describe("ranged listing bounds", () => {
  it("orders keys by UTF-8 bytes, as S3 lists them", () => {
    expect(compareKeys("d\u{1F600}", "d\uFFFD")).toBeGreaterThan(0);
    expect("d\u{1F600}" < "d\uFFFD").toBe(true);
    expect(compareKeys("a", "a")).toBe(0);
  });

  it("splits only listings large enough, into at most MAX_RANGES ranges", () => {
    const keys = (n: number) => Array.from({ length: n }, (_, i) => `p/${String(i).padStart(7, "0")}`).reverse();
    expect(rangeBounds(keys(2 * KEYS_PER_RANGE - 1))).toEqual([]);
    expect(rangeBounds(keys(2 * KEYS_PER_RANGE))).toEqual([`p/${String(KEYS_PER_RANGE).padStart(7, "0")}`]);
    const bounds = rangeBounds(keys(100_000));
    expect(bounds).toHaveLength(MAX_RANGES - 1);
    for (let i = 1; i < bounds.length; i++) expect(compareKeys(bounds[i] ?? "", bounds[i - 1] ?? "")).toBeGreaterThan(0);
  });
});
