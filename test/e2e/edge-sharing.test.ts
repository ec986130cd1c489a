// Sharing and scoped keys through the clients users already have, on the edge under
// `wrangler dev`: `ferry share` links and @aws-sdk/s3-request-presigner URLs fetched with
// curl, a read-only prefix key refused outside its prefix by the SDK and the aws CLI, and a
// new user's first steps (keys create → aws cp → rclone sync → ferry share → curl). One edge
// serves the whole file.
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeEdgeFixture, type EdgeFixture, openEdgeFixture, scratchDir } from "../helpers/edge-fixture.ts";
import type { LocalEdge, TestKey } from "../helpers/local-edge.ts";
import { AWS_CLI_V2, clientEnv, curlGet, curlPut, failure, ferry, getBytes, rcloneEnv, rcloneFlags, run, runOk, s3Client, s3ErrorCode, sha256, sha256File, treeDigest, writeTree } from "../helpers/real-clients.ts";

const MiB = 1024 * 1024;

let fixture: EdgeFixture;
let edge: LocalEdge;
let sdk: S3Client;

beforeAll(async () => {
  fixture = await openEdgeFixture({ scratchPrefix: "ferry-sharing-", grants: ["all:datasets/", "all:shared/"], keyName: "e2e-admin" });
  ({ edge, sdk } = fixture);
}, 120_000);

afterAll(() => closeEdgeFixture(fixture), 60_000);

const dir = (name: string) => scratchDir(fixture, name);

describe("sharing", () => {
  it("ferry share links download and upload with curl; tampered links fail; a revoked key kills its links", async () => {
    const sharer = await edge.createKey(["read,write:shared/share/"], { name: "sharer" });
    const shareEnv = { FERRY_EDGE_URL: edge.url, FERRY_ACCESS_KEY_ID: sharer.accessKeyId, FERRY_SECRET_ACCESS_KEY: sharer.secretAccessKey };
    const body = randomBytes(300_000);
    await sdk.send(new PutObjectCommand({ Bucket: "shared", Key: "share/run 1/result.bin", Body: body }));
    const share = await ferry(["share", "s3://shared/share/run 1/result.bin", "--expires", "2h"], shareEnv);
    expect(share.code, share.stderr).toBe(0);
    const link = share.stdout.trim();
    expect(link.startsWith(`${edge.url}/shared/share/run%201/result.bin?`)).toBe(true);
    const root = dir("share");
    const got = await curlGet(link, join(root, "got"));
    expect(got.status).toBe(200);
    expect(got.body.equals(body)).toBe(true);

    const putLink = (await ferry(["share", "s3://shared/share/uploaded.bin", "--put", "--expires", "10m"], shareEnv)).stdout.trim();
    const upload = join(root, "upload.bin");
    writeFileSync(upload, randomBytes(100_000));
    expect((await curlPut(putLink, upload)).status).toBe(200);
    expect(sha256(await getBytes(sdk, "shared", "share/uploaded.bin"))).toBe(sha256File(upload));

    const signature = /X-Amz-Signature=([0-9a-f]{64})/.exec(link)?.[1] ?? "";
    const flipped = signature.slice(0, -1) + (signature.endsWith("0") ? "1" : "0");
    const tamperedSignature = await curlGet(link.replace(signature, flipped), join(root, "t1"));
    expect([tamperedSignature.status, s3ErrorCode(tamperedSignature.body.toString())]).toEqual([403, "SignatureDoesNotMatch"]);
    const tamperedPath = await curlGet(link.replace("/result.bin?", "/other.bin?"), join(root, "t2"));
    expect([tamperedPath.status, s3ErrorCode(tamperedPath.body.toString())]).toEqual([403, "SignatureDoesNotMatch"]);

    const revoke = await ferry(["keys", "revoke", sharer.accessKeyId], { FERRY_EDGE_URL: edge.url, FERRY_ADMIN_TOKEN: edge.adminToken });
    expect(revoke.code, revoke.stderr).toBe(0);
    const afterRevoke = await curlGet(link, join(root, "revoked"));
    expect([afterRevoke.status, s3ErrorCode(afterRevoke.body.toString())]).toEqual([403, "InvalidAccessKeyId"]);
  });

  it("a URL made by @aws-sdk/s3-request-presigner works with curl", async () => {
    const body = randomBytes(12_345);
    await sdk.send(new PutObjectCommand({ Bucket: "shared", Key: "presigner/file.bin", Body: body }));
    const url = await getSignedUrl(sdk, new GetObjectCommand({ Bucket: "shared", Key: "presigner/file.bin" }), { expiresIn: 900 });
    const got = await curlGet(url, join(dir("presigner"), "got"));
    expect(got.status).toBe(200);
    expect(got.body.equals(body)).toBe(true);
  });
});

describe("policy through real clients", () => {
  it("a read,list:datasets/robots/ key reads and lists only under robots/ and cannot write", async () => {
    const episode = randomBytes(50_000);
    await sdk.send(new PutObjectCommand({ Bucket: "datasets", Key: "robots/ep0.h5", Body: episode }));
    await sdk.send(new PutObjectCommand({ Bucket: "datasets", Key: "robots/sub/ep1.h5", Body: "ep1" }));
    await sdk.send(new PutObjectCommand({ Bucket: "datasets", Key: "robotsX/secret.bin", Body: "secret" }));
    const created = await ferry(["keys", "create", "--name", "r", "--grant", "read,list:datasets/robots/", "--json"], { FERRY_EDGE_URL: edge.url, FERRY_ADMIN_TOKEN: edge.adminToken });
    expect(created.code, created.stderr).toBe(0);
    const key = JSON.parse(created.stdout) as TestKey;
    const reader = s3Client(edge.url, key);
    try {
      const listed = await reader.send(new ListObjectsV2Command({ Bucket: "datasets", Prefix: "robots/" }));
      expect(listed.Contents?.map((o) => o.Key)).toEqual(["robots/ep0.h5", "robots/sub/ep1.h5"]);
      expect((await getBytes(reader, "datasets", "robots/ep0.h5")).equals(episode)).toBe(true);
      expect(await failure(reader.send(new GetObjectCommand({ Bucket: "datasets", Key: "robotsX/secret.bin" })))).toEqual({ code: "AccessDenied", status: 403 });
      expect(await failure(reader.send(new ListObjectsV2Command({ Bucket: "datasets", Prefix: "" })))).toEqual({ code: "AccessDenied", status: 403 });
      expect(await failure(reader.send(new PutObjectCommand({ Bucket: "datasets", Key: "robots/new.h5", Body: "x" })))).toEqual({ code: "AccessDenied", status: 403 });
      const outside = await getSignedUrl(reader, new GetObjectCommand({ Bucket: "datasets", Key: "robotsX/secret.bin" }), { expiresIn: 600 });
      const denied = await curlGet(outside, join(dir("policy"), "denied"));
      expect([denied.status, s3ErrorCode(denied.body.toString())]).toEqual([403, "AccessDenied"]);
    } finally {
      reader.destroy();
    }

    const env = clientEnv(key);
    const aws = (...args: string[]) => run(AWS_CLI_V2, ["--endpoint-url", edge.url, ...args], { env });
    const ok = await aws("s3", "ls", "s3://datasets/robots/");
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("ep0.h5");
    // `s3 cp` downloads start with HeadObject, whose 403 has no body (in S3 too): no code to show.
    const head = await aws("s3", "cp", "s3://datasets/robotsX/secret.bin", join(dir("policy"), "secret"));
    expect(head.code).not.toBe(0);
    expect(head.stderr).toContain("(403) when calling the HeadObject operation");
    for (const args of [
      ["s3api", "get-object", "--bucket", "datasets", "--key", "robotsX/secret.bin", join(dir("policy"), "secret")],
      ["s3", "ls", "s3://datasets/"],
      ["s3", "cp", join(dir("policy"), "denied"), "s3://datasets/robots/new.h5"],
    ]) {
      const refused = await aws(...args);
      expect(refused.code, `aws ${args.join(" ")}`).not.toBe(0);
      expect(refused.stderr).toContain("AccessDenied");
    }
  }, 60_000);
});

describe("the new user's path", () => {
  it("keys create → aws cp → rclone sync → ferry share → curl → AccessDenied outside the prefix", async () => {
    const adminEnv = { FERRY_EDGE_URL: edge.url, FERRY_ADMIN_TOKEN: edge.adminToken };
    const created = await ferry(["keys", "create", "--name", "researcher", "--grant", "all:shared/exp-42/", "--grant", "read,list:datasets/robots/", "--json"], adminEnv);
    expect(created.code, created.stderr).toBe(0);
    const key = JSON.parse(created.stdout) as TestKey;
    const listedKeys = await ferry(["keys", "list", "--json"], adminEnv);
    expect((JSON.parse(listedKeys.stdout) as Array<{ accessKeyId: string; status: string }>).find((k) => k.accessKeyId === key.accessKeyId)?.status).toBe("active");

    const root = dir("journey");
    const model = join(root, "model.pt");
    writeFileSync(model, randomBytes(2 * MiB + 3));
    const awsEnv = clientEnv(key);
    await runOk(AWS_CLI_V2, ["--endpoint-url", edge.url, "s3", "cp", model, "s3://shared/exp-42/model.pt", "--no-progress"], { env: awsEnv });

    const logs = dir("journey/logs");
    writeTree(logs, { "train.log": "step 1 loss 0.9\n", "eval/metrics.json": '{"acc":0.5}\n', "ckpt/1.bin": randomBytes(40_000) });
    const flags = rcloneFlags(edge.url);
    await runOk("rclone", [...flags, "sync", logs, ":s3:shared/exp-42/logs"], { env: rcloneEnv(key) });
    const back = dir("journey/logs-back");
    await runOk("rclone", [...flags, "copy", ":s3:shared/exp-42/logs", back], { env: rcloneEnv(key) });
    expect(treeDigest(back)).toEqual(treeDigest(logs));

    const share = await ferry(["share", "s3://shared/exp-42/model.pt"], { FERRY_EDGE_URL: edge.url, FERRY_ACCESS_KEY_ID: key.accessKeyId, FERRY_SECRET_ACCESS_KEY: key.secretAccessKey });
    expect(share.code, share.stderr).toBe(0);
    const got = await curlGet(share.stdout.trim(), join(root, "model.download"));
    expect(got.status).toBe(200);
    expect(sha256(got.body)).toBe(sha256File(model));

    const outside = await run(AWS_CLI_V2, ["--endpoint-url", edge.url, "s3", "cp", model, "s3://shared/exp-43/model.pt"], { env: awsEnv });
    expect(outside.code).not.toBe(0);
    expect(outside.stderr).toContain("AccessDenied");
    const sharedOutside = await ferry(["share", "s3://shared/exp-43/model.pt"], { FERRY_EDGE_URL: edge.url, FERRY_ACCESS_KEY_ID: key.accessKeyId, FERRY_SECRET_ACCESS_KEY: key.secretAccessKey });
    const deniedLink = await curlGet(sharedOutside.stdout.trim(), join(root, "denied"));
    expect([deniedLink.status, s3ErrorCode(deniedLink.body.toString())]).toEqual([403, "AccessDenied"]);
    const rcloneOutside = await run("rclone", [...flags, "ls", ":s3:shared/"], { env: rcloneEnv(key) });
    expect(rcloneOutside.code).not.toBe(0);
    expect(rcloneOutside.stderr).toContain("AccessDenied");
    expect(readFileSync(model).length).toBe(2 * MiB + 3);
  }, 90_000);
});
