// The replicator's index round-trips and treats damage as "unknown", never as data.
import { describe, expect, it } from "vitest";
import { decodeIndex, encodeIndexText, indexKey } from "./dest-index.ts";

async function gzip(text: string): Promise<Uint8Array> {
  return new Uint8Array(await new Response(new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer());
}

describe("replicator index", () => {
  const entries = [
    { key: "m/a", etag: '"1"', size: 3, source: "gs://b/a", sourceVersion: "7", sourceSize: 3, crc32c: "AAAAAA==" },
    { key: "m/b", etag: '"2"', size: 4 },
  ];

  it("round-trips entries under the reserved key space, one file per shard", async () => {
    expect(indexKey("m/", { index: 1, count: 3 })).toBe(".ferry/replicator/m/index-1-of-3.ndjson.gz");
    expect(await decodeIndex(await gzip(encodeIndexText("m/", { index: 0, count: 1 }, entries)))).toEqual(entries);
  });

  it("yields nothing for truncated, foreign or non-gzip bytes", async () => {
    const text = encodeIndexText("m/", { index: 0, count: 1 }, entries);
    expect(await decodeIndex(await gzip(text.split("\n").slice(0, 2).join("\n")))).toEqual([]);
    expect(await decodeIndex(await gzip('{"format":"other"}\n'))).toEqual([]);
    expect(await decodeIndex(new TextEncoder().encode("plain"))).toEqual([]);
  });
});
