// The listing scanner reads back exactly what the edge's renderer writes — keys that need
// XML escaping, common prefixes (whose <Prefix> must not be taken for the top-level one),
// the next token — reads numeric character references (Go writes `&#34;`), and refuses a
// document that is not a listing.
import { describe, expect, it } from "vitest";
import { parseListObjectsV2, renderListObjectsV1, renderListObjectsV2 as renderBytes, type ListResult } from "./listing-xml.ts";

const text = new TextDecoder();
const renderListObjectsV2 = (result: ListResult) => text.decode(renderBytes(result));

describe("parseListObjectsV2", () => {
  it("round-trips what renderListObjectsV2 writes", () => {
    const objects = ["a&b <c>.h5", "d\"e'f", "plain/x.bin", "é/\u{1F600}"].map((key, i) => ({ key, size: i * 10, etag: `"${i}abc"`, lastModified: new Date(Date.UTC(2026, 0, i + 1)) }));
    const result: ListResult = { bucket: "b", prefix: "robots/<raw>&", delimiter: "/", maxKeys: 500, objects, commonPrefixes: ["robots/<raw>&a/", "robots/<raw>&b/"], isTruncated: true, nextContinuationToken: "tok&1" };
    expect(parseListObjectsV2(renderListObjectsV2(result))).toEqual(result);
    const last: ListResult = { bucket: "b", prefix: "", delimiter: "", maxKeys: 1000, objects: [], commonPrefixes: [], isTruncated: false };
    expect(parseListObjectsV2(renderListObjectsV2(last))).toEqual(last);
  });

  it("round-trips a page whose keys outgrow the renderer's first guess (escapes, 4-byte characters)", () => {
    const objects = Array.from({ length: 300 }, (_, i) => ({ key: `${String(i).padStart(3, "0")}/${"&<\u{1F600}é".repeat(150)}`, size: i, etag: i % 2 ? `"${i}abc-2"` : `"weird &${i}"`, lastModified: new Date(Date.UTC(2026, 0, 1) + i * 1013) }));
    const result: ListResult = { bucket: "b", prefix: "", delimiter: "", maxKeys: 1000, objects, commonPrefixes: [], isTruncated: false };
    expect(parseListObjectsV2(renderListObjectsV2(result))).toEqual(result);
    // v1 renders the same Contents (with the owner) inside its own frame.
    const v1 = text.decode(renderListObjectsV1({ ...result, marker: "" }));
    expect(v1.match(/<Contents>/g)?.length).toBe(300);
    expect(v1).toContain("<Owner><ID>ferry</ID>");
    expect(v1.indexOf("<Marker></Marker>")).toBeLessThan(v1.indexOf("<Contents>"));
  });

  it("reads numeric character references and any field order", () => {
    const xml = `<?xml version="1.0"?><ListBucketResult><Contents><Key>q&#34;k&#x2F;1</Key><LastModified>2026-01-02T00:00:00.000Z</LastModified><ETag>&#34;e1&#34;</ETag><Size>7</Size></Contents><CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes><Name>b</Name><Prefix></Prefix><IsTruncated>false</IsTruncated></ListBucketResult>`;
    const r = parseListObjectsV2(xml);
    expect(r.objects).toEqual([{ key: 'q"k/1', size: 7, etag: '"e1"', lastModified: new Date(Date.UTC(2026, 0, 2)) }]);
    expect(r).toMatchObject({ bucket: "b", prefix: "", commonPrefixes: ["p/"], isTruncated: false });
  });

  it("refuses an error document", () => {
    expect(() => parseListObjectsV2("<Error><Code>AccessDenied</Code></Error>")).toThrow(/not a ListBucketResult/);
  });
});
