// GetObject and HeadObject through the edge: whole objects, single ranges (206 with
// Content-Range, suffix and open ranges, 416 InvalidRange), conditional requests (304 /
// 412), response-content-* overrides, user metadata, and NoSuchKey.
import { beforeAll, describe, expect, it } from "vitest";
import { bytesOf, expectOk, expectS3Error, grant, issueKey, r2, s3, type IssuedKey } from "./helpers.ts";

const KEY = "read/data.bin";
const DATA = bytesOf(1000, 7);
let key: IssuedKey;
let etag: string;
let lastModified: Date;

beforeAll(async () => {
  key = await issueKey({ grants: [grant("read,list", "datasets", "read/")] });
  const put = await s3(await issueKey({ grants: [grant("write", "datasets", "read/")] })).put("datasets", KEY, DATA, {
    headers: { "content-type": "application/x-hdf5", "x-amz-meta-episode": "42", "cache-control": "max-age=60" },
  });
  await expectOk(put);
  etag = put.headers.get("etag") ?? "";
  const stored = await r2("datasets").head(KEY);
  lastModified = stored?.uploaded ?? new Date(0);
});

async function bodyBytes(response: Response): Promise<Uint8Array> {
  return new Uint8Array(await response.arrayBuffer());
}

describe("GetObject and HeadObject", () => {
  it("returns the whole object with its headers and metadata", async () => {
    const response = await s3(key).get("datasets", KEY);
    expect(response.status).toBe(200);
    expect(await bodyBytes(response)).toEqual(DATA);
    expect(response.headers.get("etag")).toBe(etag);
    expect(etag).toMatch(/^"[0-9a-f]{32}"$/);
    expect(response.headers.get("content-length")).toBe("1000");
    expect(response.headers.get("content-type")).toBe("application/x-hdf5");
    expect(response.headers.get("cache-control")).toBe("max-age=60");
    expect(response.headers.get("x-amz-meta-episode")).toBe("42");
    expect(response.headers.get("accept-ranges")).toBe("bytes");
    expect(response.headers.get("x-amz-request-id")).toMatch(/^[0-9A-F]{16}$/);
    expect(Date.parse(response.headers.get("last-modified") ?? "")).toBe(Math.floor(lastModified.getTime() / 1000) * 1000);
  });

  it("answers HEAD with the headers and no body", async () => {
    const response = await s3(key).head("datasets", KEY);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-length")).toBe("1000");
    expect(response.headers.get("etag")).toBe(etag);
    expect(response.headers.get("x-amz-meta-episode")).toBe("42");
    expect(await response.text()).toBe("");
  });

  it("answers a missing key with NoSuchKey (404), on GET and on HEAD", async () => {
    const error = await expectS3Error(await s3(key).get("datasets", "read/missing"), 404, "NoSuchKey");
    expect(error.xml).toContain("<Key>read/missing</Key>");
    await expectS3Error(await s3(key).head("datasets", "read/missing"), 404, "NoSuchKey", "HEAD");
  });

  it("applies response-content-* overrides", async () => {
    const response = await s3(key).get("datasets", KEY, {
      query: { "response-content-type": "text/plain", "response-content-disposition": 'attachment; filename="x.bin"', "response-cache-control": "no-store" },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/plain");
    expect(response.headers.get("content-disposition")).toBe('attachment; filename="x.bin"');
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(await bodyBytes(response)).toEqual(DATA);
  });
});

describe("Range", () => {
  const cases: Array<{ range: string; start: number; end: number }> = [
    { range: "bytes=100-199", start: 100, end: 199 },
    { range: "bytes=0-0", start: 0, end: 0 },
    { range: "bytes=990-5000", start: 990, end: 999 },
    { range: "bytes=-10", start: 990, end: 999 },
    { range: "bytes=-5000", start: 0, end: 999 },
    { range: "bytes=500-", start: 500, end: 999 },
  ];
  for (const { range, start, end } of cases) {
    it(`serves ${range} as 206 bytes ${start}-${end}`, async () => {
      const response = await s3(key).get("datasets", KEY, { headers: { range } });
      expect(response.status).toBe(206);
      expect(response.headers.get("content-range")).toBe(`bytes ${start}-${end}/1000`);
      expect(response.headers.get("content-length")).toBe(String(end - start + 1));
      expect(await bodyBytes(response)).toEqual(DATA.subarray(start, end + 1));
    });
  }

  it("answers HEAD with a range as 206 without a body", async () => {
    const response = await s3(key).head("datasets", KEY, { headers: { range: "bytes=10-19" } });
    expect(response.status).toBe(206);
    expect(response.headers.get("content-range")).toBe("bytes 10-19/1000");
    expect(await response.text()).toBe("");
  });

  it("refuses a range that starts at or past the end with 416 InvalidRange", async () => {
    for (const range of ["bytes=1000-", "bytes=1000-2000", "bytes=5000-6000", "bytes=-0"]) {
      const error = await expectS3Error(await s3(key).get("datasets", KEY, { headers: { range } }), 416, "InvalidRange");
      expect(error.xml).toContain("<ActualObjectSize>1000</ActualObjectSize>");
    }
  });

  it("ignores a range header S3 would ignore and sends the whole object", async () => {
    for (const range of ["bytes=5-2", "items=0-1", "bytes=0-1,5-6"]) {
      const response = await s3(key).get("datasets", KEY, { headers: { range } });
      expect(response.status, range).toBe(200);
      expect((await bodyBytes(response)).length).toBe(1000);
    }
  });
});

describe("conditional requests", () => {
  const past = () => new Date(lastModified.getTime() - 3600_000).toUTCString();
  const future = () => new Date(lastModified.getTime() + 3600_000).toUTCString();

  it("If-Match: serves on a match, 412 PreconditionFailed otherwise", async () => {
    await expectOk(await s3(key).get("datasets", KEY, { headers: { "if-match": etag } }));
    await expectOk(await s3(key).get("datasets", KEY, { headers: { "if-match": "*" } }));
    await expectS3Error(await s3(key).get("datasets", KEY, { headers: { "if-match": '"0123456789abcdef0123456789abcdef"' } }), 412, "PreconditionFailed");
  });

  it("If-None-Match: 304 on a match (no body), served otherwise", async () => {
    const response = await s3(key).get("datasets", KEY, { headers: { "if-none-match": etag } });
    await expectS3Error(response, 304, "NotModified");
    await expectOk(await s3(key).get("datasets", KEY, { headers: { "if-none-match": '"0123456789abcdef0123456789abcdef"' } }));
  });

  it("If-Modified-Since: 304 when not modified since, served when modified", async () => {
    await expectS3Error(await s3(key).get("datasets", KEY, { headers: { "if-modified-since": future() } }), 304, "NotModified");
    await expectOk(await s3(key).get("datasets", KEY, { headers: { "if-modified-since": past() } }));
  });

  it("If-Unmodified-Since: 412 when modified since, served otherwise", async () => {
    await expectS3Error(await s3(key).get("datasets", KEY, { headers: { "if-unmodified-since": past() } }), 412, "PreconditionFailed");
    await expectOk(await s3(key).get("datasets", KEY, { headers: { "if-unmodified-since": future() } }));
  });

  it("follows S3's precedence: If-Match beats If-Unmodified-Since, If-None-Match beats If-Modified-Since", async () => {
    await expectOk(await s3(key).get("datasets", KEY, { headers: { "if-match": etag, "if-unmodified-since": past() } }));
    const response = await s3(key).get("datasets", KEY, { headers: { "if-none-match": '"0123456789abcdef0123456789abcdef"', "if-modified-since": future() } });
    await expectOk(response);
  });

  it("combines a condition with a range", async () => {
    const response = await s3(key).get("datasets", KEY, { headers: { "if-match": etag, range: "bytes=0-9" } });
    expect(response.status).toBe(206);
    expect(await bodyBytes(response)).toEqual(DATA.subarray(0, 10));
    await expectS3Error(await s3(key).head("datasets", KEY, { headers: { "if-none-match": etag } }), 304, "NotModified", "HEAD");
  });
});
