// Shards: parsed strictly, stable across runs and hosts, and a partition of the keys.
import { describe, expect, it } from "vitest";
import { ConfigError } from "../errors.ts";
import { inShard, parseShard, shardOf } from "./shard.ts";

describe("shards", () => {
  it("parses i/N and refuses anything else, naming the flag", () => {
    expect(parseShard(undefined)).toEqual({ index: 0, count: 1 });
    expect(parseShard("2/3")).toEqual({ index: 2, count: 3 });
    for (const bad of ["3/3", "-1/3", "1/0", "a/b", "1", "1/3/4", ""]) {
      expect(() => parseShard(bad)).toThrow(ConfigError);
      expect(() => parseShard(bad)).toThrow(/--shard must be i\/N/);
    }
  });

  it("puts every key in exactly one shard, stably and about evenly", () => {
    const keys = Array.from({ length: 3000 }, (_, i) => `run-${i % 7}/episode_${String(i).padStart(6, "0")}.h5`);
    const counts = [0, 0, 0];
    for (const key of keys) {
      const owners = [0, 1, 2].filter((index) => inShard(key, { index, count: 3 }));
      expect(owners).toHaveLength(1);
      const owner = owners[0] ?? 0;
      counts[owner] = (counts[owner] ?? 0) + 1;
    }
    for (const count of counts) expect(count).toBeGreaterThan(900);
    // CRC32C of the UTF-8 key: the same on every host and every run.
    expect(shardOf("123456789", 1_000_000_007)).toBe(0xe3069283 % 1_000_000_007);
  });
});
