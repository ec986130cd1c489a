// Manifests round-trip, find their nearest prefix, and refuse truncated or foreign input.
import { describe, expect, it } from "vitest";
import { ManifestFormatError, candidateManifestKeys, encodeManifest, manifestKey, manifestPrefixOf, parseManifest, type ManifestEntry } from "./manifest.ts";

const entries: ManifestEntry[] = Array.from({ length: 1000 }, (_, i) => ({
  key: `robots/run-1/episode_${String(i).padStart(6, "0")}.hdf5`,
  size: 1_000_000 + i,
  etag: `"${i.toString(16).padStart(32, "0")}"`,
  lastModified: new Date(Date.UTC(2026, 10, 1, 0, 0, i)).toISOString(),
  crc32c: "AAAAAA==",
}));

describe("manifest", () => {
  it("round-trips entries and header", async () => {
    const bytes = await encodeManifest({ bucket: "datasets", prefix: "robots/run-1/", entries });
    expect(bytes[0]).toBe(0x1f); // gzip magic
    const parsed = await parseManifest(bytes);
    expect(parsed.header).toMatchObject({ format: "ferry-manifest", version: 1, bucket: "datasets", prefix: "robots/run-1/", objects: 1000 });
    expect(parsed.entries).toEqual(entries);
  });

  it("names keys under the reserved prefix and lists candidates nearest first", () => {
    expect(manifestKey("robots/run-1/")).toBe(".ferry/manifests/robots/run-1/manifest.ndjson.gz");
    expect(candidateManifestKeys("robots/run-1/episode_0")).toEqual([
      ".ferry/manifests/robots/run-1/manifest.ndjson.gz",
      ".ferry/manifests/robots/manifest.ndjson.gz",
      ".ferry/manifests/manifest.ndjson.gz",
    ]);
    expect(() => manifestKey("robots")).toThrow(ManifestFormatError);
    expect(manifestPrefixOf(manifestKey("robots/run-1/"))).toBe("robots/run-1/");
    expect(manifestPrefixOf(manifestKey(""))).toBe("");
    expect(manifestPrefixOf("robots/manifest.ndjson.gz")).toBeUndefined();
  });

  it("refuses unsorted entries, truncated files and foreign content", async () => {
    await expect(encodeManifest({ bucket: "b", prefix: "", entries: [...entries.slice(1, 2), ...entries.slice(0, 1)] })).rejects.toThrow(ManifestFormatError);
    const bytes = await encodeManifest({ bucket: "datasets", prefix: "robots/run-1/", entries });
    await expect(parseManifest(bytes.subarray(0, bytes.length - 40))).rejects.toThrow(ManifestFormatError);
    await expect(parseManifest(new TextEncoder().encode("not gzip"))).rejects.toThrow(ManifestFormatError);
    const wrongCount = await encodeManifest({ bucket: "datasets", prefix: "", entries: entries.slice(0, 3) });
    const text = new TextDecoder().decode(await new Response(new Blob([wrongCount as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream("gzip"))).arrayBuffer());
    const tampered = text.split("\n").slice(0, 3).join("\n");
    const regzipped = new Uint8Array(await new Response(new Blob([tampered]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer());
    await expect(parseManifest(regzipped)).rejects.toThrow(/truncated/);
  });
});
