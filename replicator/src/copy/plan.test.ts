// Planning decides by recorded lineage, then by checksums, and never by size alone.
import { describe, expect, it } from "vitest";
import type { DestObject } from "../dest/s3-destination.ts";
import type { IndexEntry } from "../dest/dest-index.ts";
import type { SourceObject } from "../sources/source.ts";
import { decide, keysNeedingLineage, plan } from "./plan.ts";

const src = (key: string, extra: Partial<SourceObject> = {}): SourceObject => ({ key, url: `gs://b/data/${key}`, size: 10, version: "1", crc32c: "AAAAAA==", md5: "md5==", ...extra });
const listed = (key: string, extra: Partial<DestObject> = {}): DestObject => ({ key, size: 10, etag: `"e-${key}"`, lastModified: "2026-11-01T00:00:00.000Z", ...extra });
const entry = (key: string, extra: Partial<IndexEntry> = {}): IndexEntry => ({ key, etag: `"e-${key}"`, size: 10, source: `gs://b/data/${key.replace(/^m\//, "")}`, sourceVersion: "1", sourceSize: 10, crc32c: "AAAAAA==", md5: "md5==", ...extra });

describe("decide", () => {
  it("skips what the destination records as the same source version", () => {
    expect(decide(src("a"), listed("m/a"), entry("m/a"))).toBe("unchanged");
  });
  it("copies new objects and objects of another size", () => {
    expect(decide(src("a"), undefined, undefined)).toBe("new");
    expect(decide(src("a", { size: 11 }), listed("m/a"), entry("m/a"))).toBe("changed");
  });
  it("skips a new version with the same checksums, copies one whose checksums differ", () => {
    expect(decide(src("a", { version: "2" }), listed("m/a"), entry("m/a"))).toBe("same-content");
    expect(decide(src("a", { version: "2", crc32c: "BBBBBB==" }), listed("m/a"), entry("m/a"))).toBe("changed");
    expect(decide(src("a", { version: "2", md5: "other==" }), listed("m/a"), entry("m/a"))).toBe("changed");
  });
  it("never decides by size alone", () => {
    expect(decide(src("a", { version: "2", crc32c: undefined, md5: undefined }), listed("m/a"), entry("m/a"))).toBe("changed");
    expect(decide(src("a"), listed("m/a"), undefined)).toBe("changed");
  });
});

describe("plan", () => {
  it("copies, skips, finds extras of its own shard, and refuses the reserved key space", () => {
    const sources = [src("a"), src("b", { version: "2", crc32c: "CCCCCC==" }), src("c")];
    const dest = new Map([["m/a", listed("m/a")], ["m/b", listed("m/b")], ["m/gone", listed("m/gone")]]);
    const known = new Map([["m/a", entry("m/a")], ["m/b", entry("m/b")]]);
    const result = plan({ sources, destPrefix: "m/", shard: { index: 0, count: 1 }, listed: dest, known });
    expect(result.copies.map((c) => [c.destKey, c.reason])).toEqual([["m/b", "changed"], ["m/c", "new"]]);
    expect(result.unchanged).toBe(1);
    expect(result.extra).toEqual(["m/gone"]);
    const reserved = plan({ sources: [src(".ferry/x")], destPrefix: "", shard: { index: 0, count: 1 }, listed: new Map(), known: new Map() });
    expect(reserved.rejected).toHaveLength(1);
  });

  it("trusts an index entry only while ETag and size still match the listing", () => {
    const sources = [src("a"), src("b")];
    const dest = new Map([["m/a", listed("m/a", { etag: '"rewritten"' })], ["m/b", listed("m/b")]]);
    const known = new Map([["m/a", entry("m/a")], ["m/b", entry("m/b")]]);
    expect(keysNeedingLineage(sources, "m/", dest, known)).toEqual(["m/a"]);
  });
});
