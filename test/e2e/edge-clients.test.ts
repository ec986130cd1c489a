// The edge under `wrangler dev`, driven by the clients users already have: AWS SDK v3
// (client-s3, lib-storage, s3-request-presigner), the aws CLI (v2, and v1 for SigV2
// presigning), boto3, rclone and curl. One edge serves the whole file. Sharing, scoped keys
// and a new user's first steps through the same clients: edge-sharing.test.ts.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { randomBytes } from "node:crypto";
import { createReadStream, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeEdgeFixture, type EdgeFixture, openEdgeFixture, scratchDir } from "../helpers/edge-fixture.ts";
import type { LocalEdge, TestKey } from "../helpers/local-edge.ts";
import {
  AWS_CLI_V2,
  SYSTEM_PYTHON,
  clientEnv,
  curlGet,
  failure,
  findAwsCliV1,
  getBytes,
  rcloneEnv,
  rcloneFlags,
  run,
  runOk,
  s3ErrorCode,
  sha256,
  sha256File,
  treeDigest,
  writeTree,
} from "../helpers/real-clients.ts";
import { BOTO3_SCRIPT } from "../helpers/boto3-script.ts";

const MiB = 1024 * 1024;
const awsV1 = await findAwsCliV1();

let fixture: EdgeFixture;
let edge: LocalEdge;
let admin: TestKey;
let sdk: S3Client;
/** Headers of every request the SDK client sent, by "METHOD path". */
const sent: Array<{ line: string; headers: Record<string, string> }> = [];

beforeAll(async () => {
  fixture = await openEdgeFixture({ scratchPrefix: "ferry-clients-", grants: ["all:datasets/", "all:shared/"], keyName: "e2e-admin" });
  ({ edge, key: admin, sdk } = fixture);
  sdk.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { method?: string; path?: string; headers?: Record<string, string> };
      sent.push({ line: `${request.method} ${request.path}`, headers: { ...request.headers } });
      return next(args);
    },
    { step: "finalizeRequest", name: "recordHeaders", priority: "low" },
  );
}, 120_000);

afterAll(() => closeEdgeFixture(fixture), 60_000);

const dir = (name: string) => scratchDir(fixture, name);

describe("AWS SDK v3", () => {
  it("puts, gets and heads objects with user metadata; default checksums (CRC32, aws-chunked trailer) keep bytes identical", async () => {
    const small = randomBytes(4096);
    const put = await sdk.send(new PutObjectCommand({ Bucket: "datasets", Key: "sdk/small.bin", Body: small, ContentType: "application/x-test", Metadata: { owner: "alice", run: "42" } }));
    expect(put.ETag).toMatch(/^"[0-9a-f]{32}"$/);
    const head = await sdk.send(new HeadObjectCommand({ Bucket: "datasets", Key: "sdk/small.bin" }));
    expect(head.ContentLength).toBe(4096);
    expect(head.ContentType).toBe("application/x-test");
    expect(head.Metadata).toEqual({ owner: "alice", run: "42" });
    expect(head.ETag).toBe(put.ETag);
    expect(sha256(await getBytes(sdk, "datasets", "sdk/small.bin"))).toBe(sha256(small));

    // A stream body of unknown framing is sent as aws-chunked with a CRC32 trailer.
    const path = join(dir("sdk"), "streamed.bin");
    writeFileSync(path, randomBytes(3 * MiB + 17));
    await sdk.send(new PutObjectCommand({ Bucket: "datasets", Key: "sdk/streamed.bin", Body: createReadStream(path), ContentLength: 3 * MiB + 17 }));
    const streamedPut = sent.filter((r) => r.line === "PUT /datasets/sdk/streamed.bin").at(-1)?.headers ?? {};
    expect(streamedPut["content-encoding"]).toBe("aws-chunked");
    expect(streamedPut["x-amz-content-sha256"]).toBe("STREAMING-UNSIGNED-PAYLOAD-TRAILER");
    expect(streamedPut["x-amz-trailer"]).toBe("x-amz-checksum-crc32");
    expect(sha256(await getBytes(sdk, "datasets", "sdk/streamed.bin"))).toBe(sha256File(path));
    const smallPut = sent.filter((r) => r.line === "PUT /datasets/sdk/small.bin").at(-1)?.headers ?? {};
    expect(smallPut["x-amz-checksum-crc32"]).toBeTruthy();
  });

  it("lists with prefix, delimiter and continuation tokens across more than three pages", async () => {
    const keys = Array.from({ length: 11 }, (_, i) => `sdk/list/page/${String(i).padStart(2, "0")}`);
    const tree = ["sdk/list/tree/a/1", "sdk/list/tree/a/2", "sdk/list/tree/b/1", "sdk/list/tree/c"];
    for (const key of [...keys, ...tree]) await sdk.send(new PutObjectCommand({ Bucket: "datasets", Key: key, Body: key }));

    const pages: string[][] = [];
    let token: string | undefined;
    do {
      const page = await sdk.send(new ListObjectsV2Command({ Bucket: "datasets", Prefix: "sdk/list/page/", MaxKeys: 3, ContinuationToken: token }));
      pages.push((page.Contents ?? []).map((o) => o.Key ?? ""));
      expect(page.KeyCount).toBe(page.Contents?.length ?? 0);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      if (page.IsTruncated) expect(token).toBeTruthy();
    } while (token);
    expect(pages.length).toBe(4);
    expect(pages.map((p) => p.length)).toEqual([3, 3, 3, 2]);
    expect(pages.flat()).toEqual(keys);

    const delimited = await sdk.send(new ListObjectsV2Command({ Bucket: "datasets", Prefix: "sdk/list/tree/", Delimiter: "/" }));
    expect(delimited.CommonPrefixes?.map((p) => p.Prefix)).toEqual(["sdk/list/tree/a/", "sdk/list/tree/b/"]);
    expect(delimited.Contents?.map((o) => o.Key)).toEqual(["sdk/list/tree/c"]);
    expect(delimited.Contents?.[0]?.Size).toBe("sdk/list/tree/c".length);
  });

  it("serves ranges (206) and conditionals (304, 412)", async () => {
    const body = randomBytes(1000);
    const { ETag } = await sdk.send(new PutObjectCommand({ Bucket: "datasets", Key: "sdk/range.bin", Body: body }));
    const ranged = await sdk.send(new GetObjectCommand({ Bucket: "datasets", Key: "sdk/range.bin", Range: "bytes=100-199" }));
    expect(ranged.$metadata.httpStatusCode).toBe(206);
    expect(ranged.ContentRange).toBe("bytes 100-199/1000");
    expect(ranged.ContentLength).toBe(100);
    expect(Buffer.from((await ranged.Body?.transformToByteArray()) ?? []).equals(body.subarray(100, 200))).toBe(true);
    const suffix = await sdk.send(new GetObjectCommand({ Bucket: "datasets", Key: "sdk/range.bin", Range: "bytes=-10" }));
    expect(Buffer.from((await suffix.Body?.transformToByteArray()) ?? []).equals(body.subarray(990))).toBe(true);

    // A 304 has no body (in S3 too), so the SDK can only report the status.
    expect(await failure(sdk.send(new GetObjectCommand({ Bucket: "datasets", Key: "sdk/range.bin", IfNoneMatch: ETag })))).toMatchObject({ status: 304 });
    expect(await failure(sdk.send(new HeadObjectCommand({ Bucket: "datasets", Key: "sdk/range.bin", IfNoneMatch: ETag })))).toMatchObject({ status: 304 });
    expect(await failure(sdk.send(new HeadObjectCommand({ Bucket: "datasets", Key: "sdk/range.bin", IfMatch: '"0123456789abcdef0123456789abcdef"' })))).toMatchObject({ status: 412 });
    expect(await failure(sdk.send(new GetObjectCommand({ Bucket: "datasets", Key: "sdk/range.bin", IfMatch: '"0123456789abcdef0123456789abcdef"' })))).toEqual({ code: "PreconditionFailed", status: 412 });
    const matched = await sdk.send(new GetObjectCommand({ Bucket: "datasets", Key: "sdk/range.bin", IfMatch: ETag }));
    expect(Buffer.from((await matched.Body?.transformToByteArray()) ?? []).equals(body)).toBe(true);
    expect(await failure(sdk.send(new GetObjectCommand({ Bucket: "datasets", Key: "sdk/range.bin", Range: "bytes=5000-6000" })))).toEqual({ code: "InvalidRange", status: 416 });
  });

  it("serves text objects and error documents uncompressed to clients that accept gzip", async () => {
    const text = "trajectory,frame,ok\n".repeat(2000);
    await sdk.send(new PutObjectCommand({ Bucket: "datasets", Key: "sdk/table.csv", Body: text, ContentType: "text/plain" }));
    const url = await getSignedUrl(sdk, new GetObjectCommand({ Bucket: "datasets", Key: "sdk/table.csv" }), { expiresIn: 60 });
    const ranged = await fetch(url, { headers: { "accept-encoding": "gzip, br", range: "bytes=0-99" } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get("content-length")).toBe("100");
    expect(ranged.headers.get("content-encoding")).not.toMatch(/gzip|br/);
    expect(await ranged.text()).toBe(text.slice(0, 100));
    const missing = await fetch(url.replace("table.csv", "absent.csv"), { headers: { "accept-encoding": "gzip" } });
    expect(missing.headers.get("content-encoding")).not.toMatch(/gzip|br/);
  });

  it("copies across buckets (metadata COPY and REPLACE) and deletes one by one and in batches", async () => {
    const body = randomBytes(2048);
    await sdk.send(new PutObjectCommand({ Bucket: "datasets", Key: "sdk/copy/src.txt", Body: body, ContentType: "text/plain", Metadata: { owner: "alice" } }));
    const copied = await sdk.send(new CopyObjectCommand({ Bucket: "shared", Key: "sdk/copy/kept.txt", CopySource: "datasets/sdk/copy/src.txt" }));
    expect(copied.CopyObjectResult?.ETag).toMatch(/^"[0-9a-f]{32}"$/);
    const kept = await sdk.send(new HeadObjectCommand({ Bucket: "shared", Key: "sdk/copy/kept.txt" }));
    expect(kept.Metadata).toEqual({ owner: "alice" });
    expect(kept.ContentType).toBe("text/plain");
    expect((await getBytes(sdk, "shared", "sdk/copy/kept.txt")).equals(body)).toBe(true);

    await sdk.send(new CopyObjectCommand({ Bucket: "shared", Key: "sdk/copy/replaced.json", CopySource: "datasets/sdk/copy/src.txt", MetadataDirective: "REPLACE", ContentType: "application/json", Metadata: { owner: "bob" } }));
    const replaced = await sdk.send(new HeadObjectCommand({ Bucket: "shared", Key: "sdk/copy/replaced.json" }));
    expect(replaced.Metadata).toEqual({ owner: "bob" });
    expect(replaced.ContentType).toBe("application/json");
    expect((await getBytes(sdk, "shared", "sdk/copy/replaced.json")).equals(body)).toBe(true);

    await sdk.send(new DeleteObjectCommand({ Bucket: "shared", Key: "sdk/copy/kept.txt" }));
    expect(await failure(sdk.send(new HeadObjectCommand({ Bucket: "shared", Key: "sdk/copy/kept.txt" })))).toEqual({ code: "NotFound", status: 404 });
    expect(await failure(sdk.send(new GetObjectCommand({ Bucket: "shared", Key: "sdk/copy/kept.txt" })))).toEqual({ code: "NoSuchKey", status: 404 });

    const batch = ["sdk/del/1", "sdk/del/2", "sdk/del/3"];
    for (const key of batch) await sdk.send(new PutObjectCommand({ Bucket: "datasets", Key: key, Body: key }));
    const deleted = await sdk.send(new DeleteObjectsCommand({ Bucket: "datasets", Delete: { Objects: batch.map((Key) => ({ Key })) } }));
    expect(deleted.Deleted?.map((d) => d.Key).sort()).toEqual(batch);
    expect(deleted.Errors ?? []).toEqual([]);
    const left = await sdk.send(new ListObjectsV2Command({ Bucket: "datasets", Prefix: "sdk/del/" }));
    expect(left.KeyCount).toBe(0);
  });

  it("uploads 64 MiB with lib-storage (multipart, default checksums) and reads back the same sha256", async () => {
    const path = join(dir("sdk"), "big.bin");
    writeFileSync(path, randomBytes(64 * MiB));
    const upload = new Upload({ client: sdk, params: { Bucket: "datasets", Key: "sdk/big.bin", Body: createReadStream(path) }, partSize: 8 * MiB, queueSize: 4 });
    const done = await upload.done();
    expect(done.ETag).toMatch(/-8"$/);
    const parts = sent.filter((r) => r.line === "PUT /datasets/sdk/big.bin" && r.headers["x-amz-sdk-checksum-algorithm"] !== undefined);
    expect(parts.length).toBe(8);
    const head = await sdk.send(new HeadObjectCommand({ Bucket: "datasets", Key: "sdk/big.bin" }));
    expect(head.ContentLength).toBe(64 * MiB);
    expect(sha256(await getBytes(sdk, "datasets", "sdk/big.bin"))).toBe(sha256File(path));
  }, 120_000);

  it("lists uploads and parts of an unfinished multipart upload, then aborts it", async () => {
    const key = "sdk/mpu/unfinished.bin";
    const { UploadId } = await sdk.send(new CreateMultipartUploadCommand({ Bucket: "datasets", Key: key }));
    const part1 = await sdk.send(new UploadPartCommand({ Bucket: "datasets", Key: key, UploadId, PartNumber: 1, Body: randomBytes(5 * MiB) }));
    const part2 = await sdk.send(new UploadPartCommand({ Bucket: "datasets", Key: key, UploadId, PartNumber: 2, Body: randomBytes(1000) }));
    const uploads = await sdk.send(new ListMultipartUploadsCommand({ Bucket: "datasets", Prefix: "sdk/mpu/" }));
    expect(uploads.Uploads?.map((u) => [u.Key, u.UploadId])).toContainEqual([key, UploadId]);
    const parts = await sdk.send(new ListPartsCommand({ Bucket: "datasets", Key: key, UploadId }));
    expect(parts.Parts?.map((p) => [p.PartNumber, p.ETag, p.Size])).toEqual([
      [1, part1.ETag, 5 * MiB],
      [2, part2.ETag, 1000],
    ]);
    await sdk.send(new AbortMultipartUploadCommand({ Bucket: "datasets", Key: key, UploadId }));
    expect(await failure(sdk.send(new ListPartsCommand({ Bucket: "datasets", Key: key, UploadId })))).toEqual({ code: "NoSuchUpload", status: 404 });
    const after = await sdk.send(new ListMultipartUploadsCommand({ Bucket: "datasets", Prefix: "sdk/mpu/" }));
    expect(after.Uploads?.map((u) => u.UploadId) ?? []).not.toContain(UploadId);
    expect(await failure(sdk.send(new HeadObjectCommand({ Bucket: "datasets", Key: key })))).toEqual({ code: "NotFound", status: 404 });
  });

  it("refuses CompleteMultipartUpload with a small non-last part, a wrong ETag or parts out of order", async () => {
    const key = "sdk/mpu/refused.bin";
    const { UploadId } = await sdk.send(new CreateMultipartUploadCommand({ Bucket: "datasets", Key: key }));
    const bodies = [randomBytes(1000), randomBytes(2000)];
    const etags: string[] = [];
    for (const [i, body] of bodies.entries()) {
      const part = await sdk.send(new UploadPartCommand({ Bucket: "datasets", Key: key, UploadId, PartNumber: i + 1, Body: body }));
      etags.push(part.ETag ?? "");
    }
    const complete = (parts: Array<{ PartNumber: number; ETag: string }>) =>
      sdk.send(new CompleteMultipartUploadCommand({ Bucket: "datasets", Key: key, UploadId, MultipartUpload: { Parts: parts } }));
    const [etag1 = "", etag2 = ""] = etags;
    expect(await failure(complete([{ PartNumber: 1, ETag: etag1 }, { PartNumber: 2, ETag: etag2 }]))).toEqual({ code: "EntityTooSmall", status: 400 });
    expect(await failure(complete([{ PartNumber: 1, ETag: '"0123456789abcdef0123456789abcdef"' }]))).toEqual({ code: "InvalidPart", status: 400 });
    expect(await failure(complete([{ PartNumber: 2, ETag: etag2 }, { PartNumber: 1, ETag: etag1 }]))).toEqual({ code: "InvalidPartOrder", status: 400 });
    expect(await failure(sdk.send(new HeadObjectCommand({ Bucket: "datasets", Key: key })))).toEqual({ code: "NotFound", status: 404 });
    // The refused completions left the upload usable: a single (last) part may be small.
    await complete([{ PartNumber: 1, ETag: etag1 }]);
    expect((await getBytes(sdk, "datasets", key)).equals(bodies[0] ?? Buffer.alloc(0))).toBe(true);
  });
});

describe("aws CLI", () => {
  it("v2: cp up and down (multipart above 8 MiB), ls, sync up and down", async () => {
    const env = clientEnv(admin);
    const root = dir("awscli");
    const big = join(root, "big.bin");
    writeFileSync(big, randomBytes(12 * MiB));
    await runOk(AWS_CLI_V2, ["--endpoint-url", edge.url, "s3", "cp", big, "s3://datasets/awscli/big.bin", "--no-progress"], { env });
    await runOk(AWS_CLI_V2, ["--endpoint-url", edge.url, "s3", "cp", "s3://datasets/awscli/big.bin", join(root, "big.down"), "--no-progress"], { env });
    expect(sha256File(join(root, "big.down"))).toBe(sha256File(big));
    const ls = await runOk(AWS_CLI_V2, ["--endpoint-url", edge.url, "s3", "ls", "s3://datasets/awscli/"], { env });
    expect(ls.stdout).toMatch(new RegExp(`\\s${12 * MiB}\\s+big\\.bin\\n`));

    const up = dir("awscli/up");
    writeTree(up, { "a.txt": "alpha\n", "b.bin": randomBytes(70_000), "nested/c.json": '{"c":3}\n', "nested/deeper/d.bin": randomBytes(10) });
    await runOk(AWS_CLI_V2, ["--endpoint-url", edge.url, "s3", "sync", up, "s3://datasets/awscli/tree/", "--no-progress"], { env });
    const down = dir("awscli/down");
    await runOk(AWS_CLI_V2, ["--endpoint-url", edge.url, "s3", "sync", "s3://datasets/awscli/tree/", down, "--no-progress"], { env });
    expect(treeDigest(down)).toEqual(treeDigest(up));
    // A second sync finds nothing to do.
    const again = await runOk(AWS_CLI_V2, ["--endpoint-url", edge.url, "s3", "sync", up, "s3://datasets/awscli/tree/", "--no-progress"], { env });
    expect(again.stdout.trim()).toBe("");
  }, 90_000);

  it("v2: a presigned URL (SigV4) downloads with curl", async () => {
    const body = randomBytes(5000);
    await sdk.send(new PutObjectCommand({ Bucket: "datasets", Key: "awscli/presigned.bin", Body: body }));
    const url = (await runOk(AWS_CLI_V2, ["--endpoint-url", edge.url, "s3", "presign", "s3://datasets/awscli/presigned.bin", "--expires-in", "600"], { env: clientEnv(admin) })).stdout.trim();
    expect(url).toContain("X-Amz-Signature=");
    const got = await curlGet(url, join(dir("awscli"), "presigned.v4"));
    expect(got.status).toBe(200);
    expect(got.body.equals(body)).toBe(true);
  });

  it.skipIf(!awsV1)("v1: a presigned URL (SigV2, its default for us-east-1) downloads with curl [skipped when aws CLI v1 is not installed]", async () => {
    const body = randomBytes(5000);
    await sdk.send(new PutObjectCommand({ Bucket: "datasets", Key: "awscli/presigned-v2.bin", Body: body }));
    const v1 = awsV1 ?? { command: "aws", prefix: [] };
    const env = clientEnv(admin, { AWS_DEFAULT_REGION: "us-east-1" });
    const url = (await runOk(v1.command, [...v1.prefix, "--endpoint-url", edge.url, "s3", "presign", "s3://datasets/awscli/presigned-v2.bin"], { env })).stdout.trim();
    expect(url).toMatch(/[?&]AWSAccessKeyId=.*&Signature=.*&Expires=\d+$/);
    const got = await curlGet(url, join(dir("awscli"), "presigned.v2"));
    expect(got.status).toBe(200);
    expect(got.body.equals(body)).toBe(true);
    const forged = await curlGet(url.replace(/Signature=([^&])/, (_, c: string) => `Signature=${c === "A" ? "B" : "A"}`), join(dir("awscli"), "forged.v2"));
    expect(forged.status).toBe(403);
    expect(s3ErrorCode(forged.body.toString())).toBe("SignatureDoesNotMatch");
  });
});

/** Debian's boto3, and the newer one of the Python on PATH when there is one (e.g. pyenv). */
async function pythonsWithBoto3(): Promise<Array<{ python: string; label: string }>> {
  const found: Array<{ python: string; label: string }> = [];
  for (const python of [SYSTEM_PYTHON, "python3"]) {
    const probe = await run(python, ["-c", "import sys, boto3; print(sys.executable, boto3.__version__)"], { env: clientEnv(undefined) }).catch(() => undefined);
    const [executable, version] = probe?.code === 0 ? probe.stdout.trim().split(" ") : [];
    if (executable && version && !found.some((f) => f.python === executable)) found.push({ python: executable, label: `boto3 ${version} (${executable})` });
  }
  return found;
}
const pythons = await pythonsWithBoto3();

describe("boto3", () => {
  it("Debian's python3-boto3 is installed (the boto3 tests need /usr/bin/python3 with boto3)", () => {
    expect(pythons.map((p) => p.python)).toContain(SYSTEM_PYTHON);
  });

  it.each(pythons)("$label: puts, gets, paginates, uploads 20 MiB multipart, downloads it, and presigns a URL curl can fetch", async ({ python }) => {
    const root = dir(`boto3/${sha256(python).slice(0, 8)}`);
    const big = join(root, "big.bin");
    writeFileSync(big, randomBytes(20 * MiB));
    const result = await runOk(python, ["-c", BOTO3_SCRIPT, edge.url, big, join(root, "big.down")], { env: clientEnv(admin) });
    const report = JSON.parse(result.stdout) as { body: string; metadata: Record<string, string>; keys: string[]; pages: number; etag: string; url: string };
    expect(report.body).toBe("hello from boto3");
    expect(report.metadata).toEqual({ team: "robots" });
    expect(report.keys).toEqual(Array.from({ length: 7 }, (_, i) => `boto3/page/${i}`));
    expect(report.pages).toBe(3);
    expect(report.etag).toMatch(/-3"$/);
    expect(sha256File(join(root, "big.down"))).toBe(sha256File(big));
    const got = await curlGet(report.url, join(root, "presigned"));
    expect(got.status).toBe(200);
    expect(got.body.toString()).toBe("hello from boto3");
  }, 90_000);
});

describe("rclone", () => {
  it("copies a tree up with --s3-endpoint, lists it, checks it (0 differences) and copies it back", async () => {
    const up = dir("rclone/up");
    writeTree(up, { "one.bin": randomBytes(300_000), "notes.txt": "plain text compresses on the wire\n".repeat(100), "sub/two.bin": randomBytes(1234), "sub/three.json": '{"x":1}\n' });
    const env = rcloneEnv(admin);
    const flags = rcloneFlags(edge.url);
    await runOk("rclone", [...flags, "copy", up, ":s3:datasets/rclone/"], { env });
    const ls = await runOk("rclone", [...flags, "ls", ":s3:datasets/rclone/"], { env });
    const listed = Object.fromEntries(ls.stdout.trim().split("\n").map((line) => line.trim().split(/\s+/)).map(([size = "", path = ""]) => [path, Number(size)]));
    expect(listed).toEqual({ "one.bin": 300_000, "notes.txt": 3400, "sub/two.bin": 1234, "sub/three.json": 8 });
    const check = await runOk("rclone", [...flags, "check", up, ":s3:datasets/rclone/"], { env });
    expect(check.stderr).toContain("0 differences found");
    const down = dir("rclone/down");
    await runOk("rclone", [...flags, "copy", ":s3:datasets/rclone/", down], { env });
    expect(treeDigest(down)).toEqual(treeDigest(up));
  }, 90_000);

  it("uploads in parts (Go's XML escapes the ETag quotes in Complete as &#34;)", async () => {
    const up = dir("rclone/multipart");
    writeTree(up, { "parts.bin": randomBytes(12 * 1024 * 1024) });
    const env = rcloneEnv(admin);
    const flags = rcloneFlags(edge.url);
    await runOk("rclone", [...flags, "copy", up, ":s3:datasets/rclone-mp/", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "6M"], { env });
    const down = dir("rclone/multipart-down");
    await runOk("rclone", [...flags, "copy", ":s3:datasets/rclone-mp/", down], { env });
    expect(treeDigest(down)).toEqual(treeDigest(up));
  }, 90_000);
});
