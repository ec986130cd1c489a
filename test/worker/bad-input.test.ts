// Bad input: each request gets the S3 error it deserves AND changes nothing stored. Writes
// aim at an existing object where they can, so "nothing changed" means the old bytes are
// still there, not merely that no new key appeared.
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { concatBytes, utf8 } from "../../s3/bytes.ts";
import { checksumBase64 } from "../../s3/checksums.ts";
import { bytesOf, digestOf, expectOk, expectS3Error, grant, issueKey, objectPath, r2, s3, send, storedDigest, storedKeys, xmlOne, type IssuedKey } from "./helpers.ts";

const TARGET = "bad/target.bin";
const ORIGINAL = bytesOf(4096, 21);
const DATA = bytesOf(150_000, 22);
let key: IssuedKey;
let original: string;

beforeAll(async () => {
  key = await issueKey({ grants: [grant("read,list,write,delete", "datasets", "bad/")] });
  original = await digestOf(ORIGINAL);
});

beforeEach(async () => {
  await r2("datasets").put(TARGET, ORIGINAL);
});

async function expectUnchanged(): Promise<void> {
  expect(await storedDigest("datasets", TARGET)).toBe(original);
  expect(await storedKeys("datasets", "bad/")).toEqual([TARGET]);
}

describe("malformed XML", () => {
  const documents = ["<CompleteMultipartUpload><Part>", "", "not xml at all", "<Delete><Object><Key>bad/target.bin</Key></Object></Delete>", "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>", "<CompleteMultipartUpload></CompleteMultipartUpload>"];

  it("CompleteMultipartUpload answers MalformedXML, stores nothing, and keeps the upload open", async () => {
    const created = await expectOk(await s3(key).request("POST", objectPath("datasets", TARGET), { query: { uploads: "" } }));
    const uploadId = xmlOne(created, "UploadId") ?? "";
    const part = await s3(key).request("PUT", objectPath("datasets", TARGET), { query: { partNumber: "1", uploadId }, body: DATA });
    await expectOk(part);
    for (const body of documents) {
      await expectS3Error(await s3(key).request("POST", objectPath("datasets", TARGET), { query: { uploadId }, body }), 400, "MalformedXML");
      await expectUnchanged();
    }
    const etag = part.headers.get("etag") ?? "";
    const good = `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${etag}</ETag></Part></CompleteMultipartUpload>`;
    await expectOk(await s3(key).request("POST", objectPath("datasets", TARGET), { query: { uploadId }, body: good }));
    expect(await storedDigest("datasets", TARGET)).toBe(await digestOf(DATA));
  });

  it("DeleteObjects answers MalformedXML and deletes nothing", async () => {
    const tooMany = `<Delete>${`<Object><Key>${TARGET}</Key></Object>`.repeat(1001)}</Delete>`;
    const bad = ["<Delete><Object><Key>bad/target.bin</Key></Object>", "", "<CompleteMultipartUpload/>", "<Delete></Delete>", "<Delete><Object><Key></Key></Object></Delete>", tooMany];
    for (const body of bad) {
      await expectS3Error(await s3(key).request("POST", objectPath("datasets"), { query: { delete: "" }, body }), 400, "MalformedXML");
      await expectUnchanged();
    }
  });
});

describe("aws-chunked bodies that are cut short, misframed or mis-signed", () => {
  const put = (init: Parameters<ReturnType<typeof s3>["awsChunked"]>[3]) => s3(key).awsChunked("PUT", objectPath("datasets", TARGET), DATA, { chunkBytes: 65536, ...init });

  it("a truncated signed body is IncompleteBody", async () => {
    for (const cut of [10, 70_000, 65536 + 90]) {
      await expectS3Error(await put({ mode: "signed", rewrite: (encoded) => encoded.subarray(0, cut) }), 400, "IncompleteBody");
      await expectUnchanged();
    }
    // Every data chunk, but not the final zero-length chunk.
    await expectS3Error(await put({ mode: "signed", rewriteFrames: (frames) => frames.slice(0, -1) }), 400, "IncompleteBody");
    await expectUnchanged();
  });

  it("a truncated unsigned body, or one missing its trailer, is refused", async () => {
    await expectS3Error(await put({ mode: "unsigned-trailer", rewrite: (encoded) => encoded.subarray(0, encoded.length - 40) }), 400, "IncompleteBody");
    await expectUnchanged();
    const noTrailer = await put({ mode: "unsigned-trailer", rewriteFrames: (frames) => [...frames.slice(0, -1), utf8("0\r\n\r\n")] });
    await expectS3Error(noTrailer, 400, "MalformedTrailerError");
    await expectUnchanged();
  });

  it("a body shorter or longer than x-amz-decoded-content-length is IncompleteBody", async () => {
    for (const decodedLength of [DATA.length + 1, DATA.length - 1, DATA.length + 65536]) {
      await expectS3Error(await put({ mode: "signed", decodedLength }), 400, "IncompleteBody");
      await expectUnchanged();
      await expectS3Error(await put({ mode: "unsigned-trailer", decodedLength }), 400, "IncompleteBody");
      await expectUnchanged();
    }
  });

  it("a bad hex chunk size, a missing CRLF or bytes after the end are IncompleteBody", async () => {
    const text = (frame: Uint8Array | undefined) => new TextDecoder("latin1").decode(frame);
    const rewrites: Array<(frames: Uint8Array[]) => Uint8Array[]> = [
      // "10000;chunk-signature=…" → "1z000;…"
      (frames) => [utf8(text(frames[0]).slice(0, 1)), utf8("z"), (frames[0] ?? new Uint8Array(0)).subarray(2), ...frames.slice(1)],
      // Chunk data not followed by CRLF.
      (frames) => [(frames[0] ?? new Uint8Array(0)).subarray(0, (frames[0]?.length ?? 2) - 2), ...frames.slice(1)],
      // Header line ended by LF alone.
      (frames) => {
        const first = frames[0] ?? new Uint8Array(0);
        const eol = first.indexOf(0x0d);
        return [concatBytes(first.subarray(0, eol), first.subarray(eol + 1)), ...frames.slice(1)];
      },
      // Garbage after the final chunk.
      (frames) => [...frames, utf8("extra")],
    ];
    for (const rewriteFrames of rewrites) {
      await expectS3Error(await put({ mode: "signed", rewriteFrames }), 400, "IncompleteBody");
      await expectUnchanged();
    }
    const unsignedBadSize = await put({ mode: "unsigned-trailer", rewriteFrames: (frames) => [utf8("-1\r\n"), ...frames] });
    await expectS3Error(unsignedBadSize, 400, "IncompleteBody");
    await expectUnchanged();
  });

  it("a wrong, swapped or missing chunk signature is SignatureDoesNotMatch", async () => {
    const flipSignature = (frame: Uint8Array | undefined): Uint8Array => {
      const out = (frame ?? new Uint8Array(0)).slice();
      const at = new TextDecoder("latin1").decode(out).indexOf("chunk-signature=") + "chunk-signature=".length + 10;
      out[at] = out[at] === 0x30 ? 0x31 : 0x30;
      return out;
    };
    const rewrites: Array<(frames: Uint8Array[]) => Uint8Array[]> = [
      (frames) => [frames[0] ?? new Uint8Array(0), flipSignature(frames[1]), ...frames.slice(2)],
      (frames) => [...frames.slice(0, -1), flipSignature(frames.at(-1))],
      (frames) => [frames[1] ?? new Uint8Array(0), frames[0] ?? new Uint8Array(0), ...frames.slice(2)],
      (frames) => [utf8(`${(65536).toString(16)}\r\n`), (frames[0] ?? new Uint8Array(0)).subarray((frames[0]?.indexOf(0x0a) ?? 0) + 1), ...frames.slice(1)],
    ];
    for (const rewriteFrames of rewrites) {
      await expectS3Error(await put({ mode: "signed", rewriteFrames }), 403, "SignatureDoesNotMatch");
      await expectUnchanged();
    }
    // The right data with another key's chunk chain.
    const other = await issueKey({ grants: [grant("write", "datasets", "bad/")] });
    const signedByOther = await s3(other).sign("PUT", objectPath("datasets", TARGET), { payloadHash: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", headers: { "content-encoding": "aws-chunked", "x-amz-decoded-content-length": "3" } });
    const mine = await s3(key).sign("PUT", objectPath("datasets", TARGET), { payloadHash: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", headers: { "content-encoding": "aws-chunked", "x-amz-decoded-content-length": "3" } });
    const otherSig = /Signature=([0-9a-f]{64})/.exec(signedByOther.headers["authorization"] ?? "")?.[1] ?? "";
    const body = utf8(`3;chunk-signature=${otherSig}\r\nabc\r\n0;chunk-signature=${otherSig}\r\n\r\n`);
    await expectS3Error(await send({ ...mine, body }), 403, "SignatureDoesNotMatch");
    await expectUnchanged();
  });

  it("a streaming body without x-amz-decoded-content-length is MissingContentLength", async () => {
    const response = await s3(key).request("PUT", objectPath("datasets", TARGET), {
      payloadHash: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
      headers: { "content-encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32" },
      body: `3\r\nabc\r\n0\r\nx-amz-checksum-crc32:${checksumBase64("CRC32", utf8("abc"))}\r\n\r\n`,
    });
    await expectS3Error(response, 411, "MissingContentLength");
    await expectUnchanged();
  });
});

describe("plain bodies that do not match their headers", () => {
  it("a wrong Content-MD5 is BadDigest, a malformed one InvalidDigest", async () => {
    await expectS3Error(await s3(key).put("datasets", TARGET, DATA, { headers: { "content-md5": checksumBase64("MD5", ORIGINAL) } }), 400, "BadDigest");
    await expectUnchanged();
    await expectS3Error(await s3(key).put("datasets", TARGET, DATA, { headers: { "content-md5": "!!!" } }), 400, "InvalidDigest");
    await expectUnchanged();
  });

  it("a body shorter or longer than Content-Length is IncompleteBody", async () => {
    for (const declared of [DATA.length + 100, DATA.length - 100]) {
      const parts = await s3(key).sign("PUT", objectPath("datasets", TARGET), { payloadHash: "unsigned", headers: { "content-length": String(declared) } });
      await expectS3Error(await send({ ...parts, body: DATA }), 400, "IncompleteBody");
      await expectUnchanged();
    }
  });

  it("an x-amz-content-sha256 that is no hash is InvalidArgument", async () => {
    await expectS3Error(await s3(key).put("datasets", TARGET, DATA, { payloadHash: "not-a-hash" }), 400, "InvalidArgument");
    await expectUnchanged();
  });
});

describe("requests that are wrong before any body", () => {
  it("a Range past the end is 416 InvalidRange", async () => {
    await expectS3Error(await s3(key).get("datasets", TARGET, { headers: { range: `bytes=${ORIGINAL.length}-` } }), 416, "InvalidRange");
    await expectUnchanged();
  });

  it("keys with '.' or '..' segments or control characters are InvalidArgument on every write", async () => {
    // A URL parser resolves literal and %2E dot segments before the edge sees them; these
    // forms survive it and decode to keys with such segments or characters.
    const paths = ["/datasets/bad/a/%2E%2E%2Fb", "/datasets/bad/%2E%2E%2F", "/datasets/bad/a/.%2Fb", "/datasets/bad/a%01b", "/datasets/bad/line%0Abreak", "/datasets/bad/del%7F"];
    for (const path of paths) {
      await expectS3Error(await s3(key).request("PUT", path, { body: "x" }), 400, "InvalidArgument");
      await expectS3Error(await s3(key).request("POST", path, { query: { uploads: "" } }), 400, "InvalidArgument");
      await expectS3Error(await s3(key).request("PUT", path, { headers: { "x-amz-copy-source": `datasets/${TARGET}` } }), 400, "InvalidArgument");
      await expectUnchanged();
    }
    // A dot inside a segment is an ordinary key.
    await expectOk(await s3(key).put("datasets", "bad/a..b/.hidden", "ok"));
    await r2("datasets").delete("bad/a..b/.hidden");
  });

  it("a key over 1024 bytes is KeyTooLongError; 1024 bytes is fine", async () => {
    const longest = `bad/${"é".repeat(510)}`;
    expect(utf8(longest).length).toBe(1024);
    await expectS3Error(await s3(key).put("datasets", `${longest}x`, "x"), 400, "KeyTooLongError");
    await expectS3Error(await s3(key).request("POST", objectPath("datasets", `${longest}x`), { query: { uploads: "" } }), 400, "KeyTooLongError");
    await expectUnchanged();
    await expectOk(await s3(key).put("datasets", longest, "x"));
    await r2("datasets").delete(longest);
  });

  it("a header section over 8 KiB is 400 RequestHeaderSectionTooLarge", async () => {
    const response = await s3(key).put("datasets", TARGET, DATA, { headers: { "x-amz-meta-padding": "p".repeat(8200) } });
    await expectS3Error(response, 400, "RequestHeaderSectionTooLarge");
    await expectUnchanged();
    const unsigned = await s3(key).sign("GET", objectPath("datasets", TARGET));
    await expectS3Error(await send({ ...unsigned, headers: { ...unsigned.headers, cookie: "c".repeat(9000) } }), 400, "RequestHeaderSectionTooLarge");
  });
});
