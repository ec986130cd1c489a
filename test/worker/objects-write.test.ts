// PutObject (Content-MD5, x-amz-checksum-* headers, user metadata, signed and unsigned
// aws-chunked bodies with trailing checksums), CopyObject (COPY / REPLACE, across
// buckets), DeleteObject and DeleteObjects. Every refused write must leave nothing stored.
import { beforeAll, describe, expect, it } from "vitest";
import { toHex, utf8 } from "../../s3/bytes.ts";
import { checksum, checksumBase64, type ChecksumAlgorithm } from "../../s3/checksums.ts";
import { bytesOf, expectOk, expectS3Error, grant, issueKey, listedKeys, objectPath, r2, s3, storedKeys, unique, xmlAll, xmlOne, type IssuedKey } from "./helpers.ts";

let key: IssuedKey;

beforeAll(async () => {
  key = await issueKey({
    grants: [grant("read,list,write,delete", "datasets", "w/"), grant("read,write,delete", "shared", "w/"), grant("read", "datasets", "ro/")],
  });
});

async function stored(bucket: "datasets" | "shared", k: string): Promise<Uint8Array | null> {
  const object = await r2(bucket).get(k);
  return object ? new Uint8Array(await object.arrayBuffer()) : null;
}

describe("PutObject", () => {
  it("stores the body, returns its ETag, and keeps x-amz-meta-* and content headers", async () => {
    const k = unique("w/put-");
    const data = bytesOf(3000, 3);
    const response = await s3(key).put("datasets", k, data, {
      headers: { "content-type": "application/octet-stream", "x-amz-meta-robot": "aloha", "x-amz-meta-Task": "Pick Cube", "content-disposition": "inline" },
    });
    await expectOk(response);
    expect(response.headers.get("etag")).toBe(`"${toHex(checksum("MD5", data))}"`);
    expect(await stored("datasets", k)).toEqual(data);
    const head = await s3(key).head("datasets", k);
    expect(head.headers.get("x-amz-meta-robot")).toBe("aloha");
    expect(head.headers.get("x-amz-meta-task")).toBe("Pick Cube");
    expect(head.headers.get("content-type")).toBe("application/octet-stream");
    expect(head.headers.get("content-disposition")).toBe("inline");
  });

  it("stores an empty object", async () => {
    const k = unique("w/empty-");
    await expectOk(await s3(key).put("datasets", k, new Uint8Array(0)));
    expect(await stored("datasets", k)).toEqual(new Uint8Array(0));
  });

  it("accepts UNSIGNED-PAYLOAD", async () => {
    const k = unique("w/unsigned-");
    await expectOk(await s3(key).put("datasets", k, "plain", { payloadHash: "unsigned" }));
    expect(await stored("datasets", k)).toEqual(utf8("plain"));
  });

  it("checks Content-MD5: good stores, wrong is BadDigest, malformed is InvalidDigest", async () => {
    const data = utf8("content to digest");
    const good = unique("w/md5-good-");
    await expectOk(await s3(key).put("datasets", good, data, { headers: { "content-md5": checksumBase64("MD5", data) } }));
    expect(await stored("datasets", good)).toEqual(data);
    const wrong = unique("w/md5-wrong-");
    await expectS3Error(await s3(key).put("datasets", wrong, data, { headers: { "content-md5": checksumBase64("MD5", utf8("other")) } }), 400, "BadDigest");
    const malformed = unique("w/md5-bad-");
    for (const value of ["not base64!", checksumBase64("SHA256", data), ""]) {
      await expectS3Error(await s3(key).put("datasets", malformed, data, { headers: { "content-md5": value } }), 400, "InvalidDigest");
    }
    expect(await storedKeys("datasets", "w/md5-wrong-")).toEqual([]);
    expect(await storedKeys("datasets", "w/md5-bad-")).toEqual([]);
  });

  for (const algorithm of ["CRC32", "CRC32C", "SHA256", "SHA1"] as ChecksumAlgorithm[]) {
    it(`checks x-amz-checksum-${algorithm.toLowerCase()}: good stores and echoes it, wrong is BadDigest`, async () => {
      const data = bytesOf(70_000, 11);
      const header = `x-amz-checksum-${algorithm.toLowerCase()}`;
      const good = unique(`w/${algorithm}-good-`);
      const response = await s3(key).put("datasets", good, data, { headers: { [header]: checksumBase64(algorithm, data) } });
      await expectOk(response);
      expect(response.headers.get(header)).toBe(checksumBase64(algorithm, data));
      expect(await stored("datasets", good)).toEqual(data);
      const wrong = unique(`w/${algorithm}-wrong-`);
      const flipped = data.slice();
      flipped[12345] = (flipped[12345] ?? 0) ^ 1;
      await expectS3Error(await s3(key).put("datasets", wrong, data, { headers: { [header]: checksumBase64(algorithm, flipped) } }), 400, "BadDigest");
      expect(await storedKeys("datasets", `w/${algorithm}-wrong-`)).toEqual([]);
    });
  }

  it("refuses a checksum header of the wrong shape, storing nothing", async () => {
    const k = unique("w/crc-shape-");
    await expectS3Error(await s3(key).put("datasets", k, "abc", { headers: { "x-amz-checksum-crc32": "AAAAAAAA" } }), 400, "InvalidRequest");
    expect(await stored("datasets", k)).toBeNull();
  });
});

describe("PutObject with aws-chunked bodies", () => {
  const data = bytesOf(200_000, 5);

  it("stores a signed aws-chunked body (STREAMING-AWS4-HMAC-SHA256-PAYLOAD)", async () => {
    const k = unique("w/chunked-signed-");
    await expectOk(await s3(key).awsChunked("PUT", objectPath("datasets", k), data, { mode: "signed", chunkBytes: 65536 }));
    expect(await stored("datasets", k)).toEqual(data);
    const head = await s3(key).head("datasets", k);
    expect(head.headers.get("content-length")).toBe(String(data.length));
    // aws-chunked describes the request only: it is never stored as the object's encoding.
    expect(head.headers.get("content-encoding") ?? "").not.toContain("aws-chunked");
    expect((await r2("datasets").head(k))?.httpMetadata?.contentEncoding).toBeUndefined();
  });

  it("stores a signed aws-chunked body with a signed CRC32 trailer", async () => {
    const k = unique("w/chunked-signed-trailer-");
    const response = await s3(key).awsChunked("PUT", objectPath("datasets", k), data, { mode: "signed-trailer", chunkBytes: 65536 });
    await expectOk(response);
    expect(response.headers.get("x-amz-checksum-crc32")).toBe(checksumBase64("CRC32", data));
    expect(await stored("datasets", k)).toEqual(data);
  });

  it("stores an unsigned aws-chunked body whose CRC32 trailer matches", async () => {
    const k = unique("w/chunked-unsigned-");
    const response = await s3(key).awsChunked("PUT", objectPath("datasets", k), data, { mode: "unsigned-trailer", chunkBytes: 8192 });
    await expectOk(response);
    expect(response.headers.get("x-amz-checksum-crc32")).toBe(checksumBase64("CRC32", data));
    expect(await stored("datasets", k)).toEqual(data);
  });

  it("stores an unsigned aws-chunked body with a CRC32C trailer, keeping a content-encoding given beside aws-chunked", async () => {
    const k = unique("w/chunked-crc32c-");
    const response = await s3(key).awsChunked("PUT", objectPath("datasets", k), data, {
      mode: "unsigned-trailer",
      trailerAlgorithm: "CRC32C",
      headers: { "content-encoding": "gzip" },
    });
    await expectOk(response);
    expect(response.headers.get("x-amz-checksum-crc32c")).toBe(checksumBase64("CRC32C", data));
    expect(await stored("datasets", k)).toEqual(data);
    expect((await r2("datasets").head(k))?.httpMetadata?.contentEncoding).toBe("gzip");
    expect((await s3(key).head("datasets", k)).headers.get("content-encoding")).toBe("gzip");
  });

  it("refuses an unsigned aws-chunked body whose CRC32 trailer is wrong, storing nothing", async () => {
    const k = unique("w/chunked-badcrc-");
    const response = await s3(key).awsChunked("PUT", objectPath("datasets", k), data, {
      mode: "unsigned-trailer",
      trailerValue: checksumBase64("CRC32", utf8("something else")),
    });
    await expectS3Error(response, 400, "BadDigest");
    expect(await stored("datasets", k)).toBeNull();
  });

  it("refuses a signed trailer whose value was changed after signing", async () => {
    const k = unique("w/chunked-trailer-tampered-");
    const good = checksumBase64("CRC32", data);
    const response = await s3(key).awsChunked("PUT", objectPath("datasets", k), data, {
      mode: "signed-trailer",
      rewriteFrames: (frames) => {
        const last = new TextDecoder().decode(frames.at(-1));
        return [...frames.slice(0, -1), utf8(last.replace(good, checksumBase64("CRC32", utf8("x"))))];
      },
    });
    await expectS3Error(response, 403, "SignatureDoesNotMatch");
    expect(await stored("datasets", k)).toBeNull();
  });
});

describe("CopyObject", () => {
  it("copies within a bucket keeping metadata (COPY) and across buckets replacing it (REPLACE)", async () => {
    const source = unique("w/copy-src-");
    const data = bytesOf(5000, 9);
    await expectOk(await s3(key).put("datasets", source, data, { headers: { "content-type": "image/png", "x-amz-meta-origin": "gcs" } }));

    const sameBucket = unique("w/copy-dst-");
    const copied = await s3(key).request("PUT", objectPath("datasets", sameBucket), { headers: { "x-amz-copy-source": `/datasets/${source}` } });
    const body = await expectOk(copied);
    expect(xmlOne(body, "ETag")).toBe(`"${toHex(checksum("MD5", data))}"`);
    expect(xmlOne(body, "LastModified")).toMatch(/^\d{4}-\d\d-\d\dT/);
    const head = await s3(key).head("datasets", sameBucket);
    expect(head.headers.get("x-amz-meta-origin")).toBe("gcs");
    expect(head.headers.get("content-type")).toBe("image/png");
    expect(await stored("datasets", sameBucket)).toEqual(data);

    const across = unique("w/copy-across-");
    const replaced = await s3(key).request("PUT", objectPath("shared", across), {
      headers: { "x-amz-copy-source": encodeURIComponent(`datasets/${source}`), "x-amz-metadata-directive": "REPLACE", "content-type": "text/plain", "x-amz-meta-stage": "shared" },
    });
    await expectOk(replaced);
    const acrossHead = await s3(key).head("shared", across);
    expect(acrossHead.headers.get("x-amz-meta-stage")).toBe("shared");
    expect(acrossHead.headers.get("x-amz-meta-origin")).toBeNull();
    expect(acrossHead.headers.get("content-type")).toBe("text/plain");
    expect(await stored("shared", across)).toEqual(data);
  });

  it("refuses copying an object onto itself with COPY, allows it with REPLACE", async () => {
    const k = unique("w/self-");
    await expectOk(await s3(key).put("datasets", k, "self"));
    await expectS3Error(await s3(key).request("PUT", objectPath("datasets", k), { headers: { "x-amz-copy-source": `datasets/${k}` } }), 400, "InvalidRequest");
    await expectOk(await s3(key).request("PUT", objectPath("datasets", k), { headers: { "x-amz-copy-source": `datasets/${k}`, "x-amz-metadata-directive": "REPLACE", "x-amz-meta-v": "2" } }));
    expect((await r2("datasets").head(k))?.customMetadata).toEqual({ v: "2" });
  });

  it("answers NoSuchKey for a missing source and AccessDenied for a source outside the grants", async () => {
    const dest = unique("w/copy-missing-");
    await expectS3Error(await s3(key).request("PUT", objectPath("datasets", dest), { headers: { "x-amz-copy-source": "datasets/w/does-not-exist" } }), 404, "NoSuchKey");
    await r2("datasets").put("secret/plans.txt", "classified");
    await expectS3Error(await s3(key).request("PUT", objectPath("datasets", dest), { headers: { "x-amz-copy-source": "datasets/secret/plans.txt" } }), 403, "AccessDenied");
    expect(await storedKeys("datasets", dest)).toEqual([]);
  });

  it("checks x-amz-copy-source-if-match (412 PreconditionFailed)", async () => {
    const source = unique("w/copy-cond-");
    await expectOk(await s3(key).put("datasets", source, "v1"));
    const dest = unique("w/copy-cond-dst-");
    const response = await s3(key).request("PUT", objectPath("datasets", dest), {
      headers: { "x-amz-copy-source": `datasets/${source}`, "x-amz-copy-source-if-match": '"00000000000000000000000000000000"' },
    });
    await expectS3Error(response, 412, "PreconditionFailed");
    expect(await stored("datasets", dest)).toBeNull();
  });
});

describe("DeleteObject and DeleteObjects", () => {
  it("deletes an object (204), and deleting a missing key also succeeds", async () => {
    const k = unique("w/del-");
    await expectOk(await s3(key).put("datasets", k, "bye"));
    await expectOk(await s3(key).delete("datasets", k), 204);
    expect(await stored("datasets", k)).toBeNull();
    await expectOk(await s3(key).delete("datasets", k), 204);
  });

  it("deletes a batch and reports a key outside the grants as an <Error>, deleting nothing there", async () => {
    const a = unique("w/batch-a-");
    const b = unique("w/batch-b-");
    await expectOk(await s3(key).put("datasets", a, "a"));
    await expectOk(await s3(key).put("datasets", b, "b"));
    await r2("datasets").put("ro/keep.txt", "keep");
    const xml = `<?xml version="1.0" encoding="UTF-8"?><Delete><Object><Key>${a}</Key></Object><Object><Key>ro/keep.txt</Key></Object><Object><Key>${b}</Key></Object></Delete>`;
    const body = await expectOk(await s3(key).request("POST", objectPath("datasets"), { query: { delete: "" }, body: xml, headers: { "content-type": "application/xml" } }));
    expect(xmlAll(body, "Deleted").map((d) => xmlOne(d, "Key")).sort()).toEqual([a, b].sort());
    const errors = xmlAll(body, "Error");
    expect(errors.map((e) => [xmlOne(e, "Key"), xmlOne(e, "Code")])).toEqual([["ro/keep.txt", "AccessDenied"]]);
    expect(await stored("datasets", a)).toBeNull();
    expect(await stored("datasets", b)).toBeNull();
    expect(await stored("datasets", "ro/keep.txt")).toEqual(utf8("keep"));
  });

  it("reports only errors in Quiet mode", async () => {
    const a = unique("w/quiet-");
    await expectOk(await s3(key).put("datasets", a, "a"));
    const xml = `<Delete><Quiet>true</Quiet><Object><Key>${a}</Key></Object></Delete>`;
    const body = await expectOk(await s3(key).request("POST", objectPath("datasets"), { query: { delete: "" }, body: xml }));
    expect(xmlAll(body, "Deleted")).toEqual([]);
    expect(xmlAll(body, "Error")).toEqual([]);
    expect(listedKeys(body)).toEqual([]);
    expect(await stored("datasets", a)).toBeNull();
  });

  it("refuses DeleteObject outside the grants with AccessDenied and keeps the object", async () => {
    await r2("datasets").put("ro/keep2.txt", "keep");
    await expectS3Error(await s3(key).delete("datasets", "ro/keep2.txt"), 403, "AccessDenied");
    expect(await stored("datasets", "ro/keep2.txt")).toEqual(utf8("keep"));
  });
});
