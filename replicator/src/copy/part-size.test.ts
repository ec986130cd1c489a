// Part sizes obey R2: equal whole-MiB parts of at least 5 MiB, never more than 10,000.
import { describe, expect, it } from "vitest";
import { MAX_PARTS, MIN_PART_BYTES, partCount, partSizeFor } from "./part-size.ts";

const MiB = 1024 * 1024;

describe("part sizes", () => {
  it("uses the configured size when 10,000 parts suffice", () => {
    expect(partSizeFor(200 * MiB, 16 * MiB)).toBe(16 * MiB);
    expect(partCount(200 * MiB, 16 * MiB)).toBe(13);
    expect(partSizeFor(10 * MiB, 1)).toBe(MIN_PART_BYTES);
  });

  it("grows parts (in whole MiB) so that huge objects stay within 10,000 parts", () => {
    for (const bytes of [160 * 1024 * MiB + 1, 1024 ** 4, 5 * 1024 ** 4]) {
      const size = partSizeFor(bytes, 16 * MiB);
      expect(size % MiB).toBe(0);
      expect(partCount(bytes, size)).toBeLessThanOrEqual(MAX_PARTS);
    }
  });
});
