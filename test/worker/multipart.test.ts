// Multipart upload through the edge: Create, UploadPart, ListParts, ListMultipartUploads,
// Complete and Abort, and the errors S3 gives (NoSuchUpload, InvalidPart, InvalidPartOrder,
// EntityTooSmall with S3's 5 MiB minimum; R2 also needs equal-size non-final parts).
import { beforeAll, describe, expect, it } from "vitest";
import { concatBytes } from "../../s3/bytes.ts";
import { checksumBase64 } from "../../s3/checksums.ts";
import { MiB, bytesOf, digestOf, expectOk, expectS3Error, grant, issueKey, objectPath, r2, s3, storedDigest, unique, xmlAll, xmlOne, type IssuedKey, type S3RequestInit } from "./helpers.ts";

/** Tests that move 5-16 MiB through the edge: ~1.5 s here, more on a busy 2-core machine. */
const BIG_TEST_MS = 30_000;
let key: IssuedKey;

beforeAll(async () => {
  key = await issueKey({ grants: [grant("read,list,write,delete", "datasets", "mp/")] });
});

async function create(k: string, headers: Record<string, string> = {}): Promise<string> {
  const body = await expectOk(await s3(key).request("POST", objectPath("datasets", k), { query: { uploads: "" }, headers }));
  expect(xmlOne(body, "Key")).toBe(k);
  expect(xmlOne(body, "Bucket")).toBe("datasets");
  const uploadId = xmlOne(body, "UploadId") ?? "";
  expect(uploadId).not.toBe("");
  return uploadId;
}

function uploadPart(k: string, uploadId: string, partNumber: number, data: Uint8Array, init: S3RequestInit = {}): Promise<Response> {
  return s3(key).request("PUT", objectPath("datasets", k), { ...init, query: { partNumber: String(partNumber), uploadId }, body: data });
}

async function part(k: string, uploadId: string, partNumber: number, data: Uint8Array): Promise<string> {
  const response = await uploadPart(k, uploadId, partNumber, data);
  await expectOk(response);
  const etag = response.headers.get("etag") ?? "";
  expect(etag).toMatch(/^".+"$/);
  return etag;
}

function completeXml(parts: Array<[number, string]>): string {
  return `<CompleteMultipartUpload>${parts.map(([n, etag]) => `<Part><PartNumber>${n}</PartNumber><ETag>${etag}</ETag></Part>`).join("")}</CompleteMultipartUpload>`;
}

function complete(k: string, uploadId: string, parts: Array<[number, string]>): Promise<Response> {
  return s3(key).request("POST", objectPath("datasets", k), { query: { uploadId }, body: completeXml(parts) });
}

async function openUploads(prefix = "mp/"): Promise<Array<[string, string]>> {
  const body = await expectOk(await s3(key).request("GET", objectPath("datasets"), { query: { uploads: "", prefix } }));
  return xmlAll(body, "Upload").map((u) => [xmlOne(u, "Key") ?? "", xmlOne(u, "UploadId") ?? ""]);
}

describe("a complete multipart upload", () => {
  it("assembles equal 5 MiB parts and a short last part, keeping the metadata given at Create", { timeout: BIG_TEST_MS }, async () => {
    const k = unique("mp/big-");
    const parts = [bytesOf(5 * MiB, 1), bytesOf(5 * MiB, 2), bytesOf(123_457, 3)];
    const uploadId = await create(k, { "content-type": "application/x-hdf5", "x-amz-meta-episode": "7" });
    expect(await openUploads()).toContainEqual([k, uploadId]);

    const etags: string[] = [];
    for (const [i, data] of parts.entries()) etags.push(await part(k, uploadId, i + 1, data));

    const listed = await expectOk(await s3(key).request("GET", objectPath("datasets", k), { query: { uploadId } }));
    expect(xmlOne(listed, "UploadId")).toBe(uploadId);
    expect(xmlAll(listed, "Part").map((p) => [xmlOne(p, "PartNumber"), xmlOne(p, "ETag"), xmlOne(p, "Size")])).toEqual(
      parts.map((data, i) => [String(i + 1), etags[i], String(data.length)]),
    );
    const page = await expectOk(await s3(key).request("GET", objectPath("datasets", k), { query: { uploadId, "max-parts": "2" } }));
    expect(xmlAll(page, "Part").map((p) => xmlOne(p, "PartNumber"))).toEqual(["1", "2"]);
    expect(xmlOne(page, "IsTruncated")).toBe("true");
    expect(xmlOne(page, "NextPartNumberMarker")).toBe("2");

    const body = await expectOk(await complete(k, uploadId, etags.map((etag, i) => [i + 1, etag])));
    expect(xmlOne(body, "Key")).toBe(k);
    expect(xmlOne(body, "ETag")).toMatch(/^"[0-9a-f]{32}-3"$/);

    expect(await storedDigest("datasets", k)).toBe(await digestOf(concatBytes(...parts)));
    const head = await s3(key).head("datasets", k);
    expect(head.headers.get("content-length")).toBe(String(10 * MiB + 123_457));
    expect(head.headers.get("content-type")).toBe("application/x-hdf5");
    expect(head.headers.get("x-amz-meta-episode")).toBe("7");
    expect(head.headers.get("etag")).toBe(xmlOne(body, "ETag"));

    expect(await openUploads()).not.toContainEqual([k, uploadId]);
    await expectS3Error(await s3(key).request("GET", objectPath("datasets", k), { query: { uploadId } }), 404, "NoSuchUpload");
  });

  it("accepts a single part smaller than 5 MiB, sent as an SDK-style aws-chunked body with a CRC32 trailer", async () => {
    const k = unique("mp/small-");
    const data = bytesOf(300_000, 4);
    const uploadId = await create(k);
    const response = await s3(key).awsChunked("PUT", objectPath("datasets", k), data, { mode: "unsigned-trailer", query: { partNumber: "1", uploadId } });
    await expectOk(response);
    expect(response.headers.get("x-amz-checksum-crc32")).toBe(checksumBase64("CRC32", data));
    await expectOk(await complete(k, uploadId, [[1, response.headers.get("etag") ?? ""]]));
    expect(await storedDigest("datasets", k)).toBe(await digestOf(data));
  });

  it("replaces a part uploaded twice with the later one", async () => {
    const k = unique("mp/again-");
    const uploadId = await create(k);
    await part(k, uploadId, 1, bytesOf(1000, 1));
    const second = await part(k, uploadId, 1, bytesOf(1000, 2));
    await expectOk(await complete(k, uploadId, [[1, second]]));
    expect(await storedDigest("datasets", k)).toBe(await digestOf(bytesOf(1000, 2)));
  });
});

describe("abort and NoSuchUpload", () => {
  it("aborts an upload: 204, gone from the listing, later calls are NoSuchUpload, nothing stored", async () => {
    const k = unique("mp/abort-");
    const uploadId = await create(k);
    const etag = await part(k, uploadId, 1, bytesOf(1000));
    await expectOk(await s3(key).request("DELETE", objectPath("datasets", k), { query: { uploadId } }), 204);
    expect(await openUploads()).not.toContainEqual([k, uploadId]);
    await expectS3Error(await uploadPart(k, uploadId, 2, bytesOf(10)), 404, "NoSuchUpload");
    await expectS3Error(await complete(k, uploadId, [[1, etag]]), 404, "NoSuchUpload");
    await expectS3Error(await s3(key).request("DELETE", objectPath("datasets", k), { query: { uploadId } }), 404, "NoSuchUpload");
    expect(await r2("datasets").head(k)).toBeNull();
  });

  it("answers an unknown upload id, or an upload id used with another key, with NoSuchUpload", async () => {
    const k = unique("mp/unknown-");
    const bogus = "AAAAbogusUploadId";
    const error = await expectS3Error(await uploadPart(k, bogus, 1, bytesOf(10)), 404, "NoSuchUpload");
    expect(error.xml).toContain(`<UploadId>${bogus}</UploadId>`);
    await expectS3Error(await s3(key).request("GET", objectPath("datasets", k), { query: { uploadId: bogus } }), 404, "NoSuchUpload");
    await expectS3Error(await complete(k, bogus, [[1, '"x"']]), 404, "NoSuchUpload");
    const real = await create(k);
    await expectS3Error(await uploadPart(unique("mp/other-"), real, 1, bytesOf(10)), 404, "NoSuchUpload");
  });
});

describe("Complete refuses bad part lists and stores nothing", () => {
  it("InvalidPart for a part never uploaded or a wrong ETag; the upload stays open", async () => {
    const k = unique("mp/invalid-");
    const uploadId = await create(k);
    const etag = await part(k, uploadId, 1, bytesOf(2000));
    const missing = await expectS3Error(await complete(k, uploadId, [[2, etag]]), 400, "InvalidPart");
    expect(missing.xml).toContain("<PartNumber>2</PartNumber>");
    await expectS3Error(await complete(k, uploadId, [[1, '"0123456789abcdef0123456789abcdef"']]), 400, "InvalidPart");
    expect(await r2("datasets").head(k)).toBeNull();
    await expectOk(await complete(k, uploadId, [[1, etag]]));
    expect((await r2("datasets").head(k))?.size).toBe(2000);
  });

  it("InvalidPartOrder for parts out of ascending order (or repeated)", { timeout: BIG_TEST_MS }, async () => {
    const k = unique("mp/order-");
    const uploadId = await create(k);
    const one = await part(k, uploadId, 1, bytesOf(5 * MiB, 5));
    const two = await part(k, uploadId, 2, bytesOf(10, 6));
    await expectS3Error(await complete(k, uploadId, [[2, two], [1, one]]), 400, "InvalidPartOrder");
    await expectS3Error(await complete(k, uploadId, [[1, one], [1, one]]), 400, "InvalidPartOrder");
    expect(await r2("datasets").head(k)).toBeNull();
  });

  it("EntityTooSmall when a part other than the last is under 5 MiB", { timeout: BIG_TEST_MS }, async () => {
    const k = unique("mp/small-parts-");
    const uploadId = await create(k);
    const one = await part(k, uploadId, 1, bytesOf(5 * MiB - 1, 7));
    const two = await part(k, uploadId, 2, bytesOf(1000, 8));
    const error = await expectS3Error(await complete(k, uploadId, [[1, one], [2, two]]), 400, "EntityTooSmall");
    expect(error.xml).toContain("<MinSizeAllowed>5242880</MinSizeAllowed>");
    expect(await r2("datasets").head(k)).toBeNull();
  });

  it("refuses non-final parts of unequal size (R2 cannot assemble them) with a 400, not a 500", { timeout: BIG_TEST_MS }, async () => {
    const k = unique("mp/unequal-");
    const uploadId = await create(k);
    const one = await part(k, uploadId, 1, bytesOf(6 * MiB, 9));
    const two = await part(k, uploadId, 2, bytesOf(5 * MiB, 10));
    const three = await part(k, uploadId, 3, bytesOf(100, 11));
    await expectS3Error(await complete(k, uploadId, [[1, one], [2, two], [3, three]]), 400, "InvalidPart");
    expect(await r2("datasets").head(k)).toBeNull();
  });
});

describe("part uploads are checked like PutObject", () => {
  it("refuses a part with a wrong Content-MD5 (BadDigest) and does not record it", async () => {
    const k = unique("mp/md5-");
    const uploadId = await create(k);
    const data = bytesOf(4096, 12);
    const response = await uploadPart(k, uploadId, 1, data, { headers: { "content-md5": checksumBase64("MD5", bytesOf(4096, 13)) } });
    await expectS3Error(response, 400, "BadDigest");
    const listed = await expectOk(await s3(key).request("GET", objectPath("datasets", k), { query: { uploadId } }));
    expect(xmlAll(listed, "Part")).toEqual([]);
  });

  it("refuses part numbers outside 1..10000 with InvalidArgument", async () => {
    const k = unique("mp/partno-");
    const uploadId = await create(k);
    for (const n of [0, 10001]) await expectS3Error(await uploadPart(k, uploadId, n, bytesOf(10)), 400, "InvalidArgument");
    const listed = await expectOk(await s3(key).request("GET", objectPath("datasets", k), { query: { uploadId } }));
    expect(xmlAll(listed, "Part")).toEqual([]);
  });

  it("answers UploadPartCopy with NotImplemented", async () => {
    const k = unique("mp/copy-");
    const uploadId = await create(k);
    const response = await s3(key).request("PUT", objectPath("datasets", k), { query: { partNumber: "1", uploadId }, headers: { "x-amz-copy-source": `datasets/${k}` } });
    await expectS3Error(response, 501, "NotImplemented");
  });

  it("refuses multipart calls outside the key's grants", async () => {
    await expectS3Error(await s3(key).request("POST", objectPath("datasets", "elsewhere/x"), { query: { uploads: "" } }), 403, "AccessDenied");
    await expectS3Error(await s3(key).request("GET", objectPath("datasets"), { query: { uploads: "", prefix: "elsewhere/" } }), 403, "AccessDenied");
  });
});
