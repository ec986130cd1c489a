// The SDK-free listing reader agrees with the edge's own ListObjectsV2 renderer, including
// keys that need XML escaping, and refuses a document that is not a listing.
import { describe, expect, it } from "vitest";
import { renderListObjectsV2 } from "../../../s3/listing-xml.ts";
import { scanListObjectsV2 } from "./list-page.ts";

describe("scanListObjectsV2", () => {
  it("reads keys, sizes, ETags, dates and the next token as rendered by the edge", () => {
    const objects = ["a&b <c>.h5", "d\"e'f", "plain/x.bin", "é/\u{1F600}"].map((key, i) => ({ key, size: i * 10, etag: `"${i}abc"`, lastModified: new Date(Date.UTC(2026, 0, i + 1)) }));
    const xml = renderListObjectsV2({ bucket: "b", prefix: "", delimiter: "", maxKeys: 1000, objects, commonPrefixes: [], isTruncated: true, nextContinuationToken: "tok&1" });
    expect(scanListObjectsV2(xml)).toEqual({
      objects: objects.map((o) => ({ key: o.key, size: o.size, etag: o.etag, lastModified: o.lastModified.toISOString() })),
      nextContinuationToken: "tok&1",
    });
    const last = renderListObjectsV2({ bucket: "b", prefix: "", delimiter: "", maxKeys: 1000, objects: [], commonPrefixes: [], isTruncated: false });
    expect(scanListObjectsV2(last)).toEqual({ objects: [], nextContinuationToken: undefined });
  });

  it("refuses an error document", () => {
    expect(() => scanListObjectsV2("<Error><Code>AccessDenied</Code></Error>")).toThrow(/not a ListBucketResult/);
  });
});
