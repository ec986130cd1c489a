// Operating the agent: real clients against its endpoint (boto3, aws CLI, rclone), the
// optional local key, `ferry warm` / `ferry status`, kill -9 during a warm, the edge going
// away, and bad input (unknown bucket, cache dir that is a file).
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeManifest, manifestKey } from "../../s3/manifest.ts";
import { signRequest } from "../../s3/sigv4.ts";
import { projectRoot } from "../../scripts/lib/edge-process.ts";
import { startAgentProcess } from "../helpers/agent-process.ts";
import { startLocalEdge, type LocalEdge, type TestKey } from "../helpers/local-edge.ts";
import { AWS_CLI_V2, SYSTEM_PYTHON, clientEnv, rcloneFlags, run, runOk } from "../helpers/real-clients.ts";

const MiB = 1024 * 1024;
const scratch = mkdtempSync(join(tmpdir(), "ferry-agent-ops-"));
let edge: LocalEdge;
let nodeKey: TestKey;
const files = Array.from({ length: 6 }, (_, i) => randomBytes(2 * MiB + i * 7777));

beforeAll(async () => {
  edge = await startLocalEdge();
  const admin = await edge.createKey(["all:datasets"]);
  nodeKey = await edge.createKey(["read,list:datasets"], { name: "node" });
  const writer = new S3Client({ endpoint: edge.url, region: "auto", forcePathStyle: true, credentials: admin });
  for (const [i, body] of files.entries()) await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: `ops/f${i}.bin`, Body: body }));
}, 180_000);

afterAll(async () => {
  await edge?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

const anyKey = { accessKeyId: "AKIAANYTHING", secretAccessKey: "anything" };

describe("agent operations", () => {
  it("serves boto3, the aws CLI and rclone unchanged, with or without credentials", async () => {
    const agent = await startAgentProcess({ edgeUrl: edge.url, key: nodeKey, cacheDir: join(scratch, "clients") });
    try {
      const out = join(scratch, "out");
      const cli = await runOk(AWS_CLI_V2, ["--endpoint-url", agent.url, "s3", "cp", "s3://datasets/ops/f1.bin", join(out, "cli.bin")], { env: clientEnv(anyKey) });
      expect(cli.code).toBe(0);
      expect(readFileSync(join(out, "cli.bin")).equals(files[1] ?? Buffer.alloc(0))).toBe(true);
      const unsigned = await runOk(AWS_CLI_V2, ["--no-sign-request", "--endpoint-url", agent.url, "s3", "ls", "s3://datasets/ops/"], { env: clientEnv(undefined) });
      expect(unsigned.stdout).toContain("f5.bin");
      const py = await runOk(SYSTEM_PYTHON, ["-c", `
import boto3, hashlib, sys
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="x", aws_secret_access_key="y", region_name="auto")
body = s3.get_object(Bucket="datasets", Key="ops/f2.bin", Range="bytes=100-1099")["Body"].read()
print(len(body), hashlib.sha256(body).hexdigest())
`, agent.url], { env: clientEnv(undefined) });
      const [length, digest] = py.stdout.trim().split(" ");
      expect(Number(length)).toBe(1000);
      expect(digest).toBe(createHashHex((files[2] ?? Buffer.alloc(0)).subarray(100, 1100)));
      await runOk("rclone", ["copy", ":s3:datasets/ops/", join(out, "rclone"), ...rcloneFlags(agent.url)], { env: clientEnv(anyKey, { RCLONE_S3_ACCESS_KEY_ID: "x", RCLONE_S3_SECRET_ACCESS_KEY: "y" }) });
      expect(readFileSync(join(out, "rclone", "f3.bin")).equals(files[3] ?? Buffer.alloc(0))).toBe(true);
      const put = await run(AWS_CLI_V2, ["--endpoint-url", agent.url, "s3", "cp", join(out, "cli.bin"), "s3://datasets/ops/new.bin"], { env: clientEnv(anyKey) });
      expect(put.code).not.toBe(0);
      const unknown = await fetch(`${agent.url}/nosuchbucket/x`);
      expect(unknown.status).toBe(404);
      expect(await unknown.text()).toContain("<Code>NoSuchBucket</Code>");
    } finally {
      await agent.stop();
    }
  });

  it("lists a dataset's folders from its manifest without asking the edge for a manifest per folder; a nested dataset's own manifest answers for it", async () => {
    const admin = await edge.createKey(["all:datasets"]);
    const writer = new S3Client({ endpoint: edge.url, region: "auto", forcePathStyle: true, credentials: admin });
    const entry = (key: string) => ({ key, size: 10, etag: `"${createHash("md5").update(key).digest("hex")}"`, lastModified: new Date().toISOString() });
    const parent = ["nest/a/x0.bin", "nest/a/x1.bin", "nest/b/y0.bin", "nest/c/z0.bin", "nest/sub/from_parent.bin"].map(entry);
    await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: manifestKey("nest/"), Body: await encodeManifest({ bucket: "datasets", prefix: "nest/", entries: parent }) }));
    await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: manifestKey("nest/sub/"), Body: await encodeManifest({ bucket: "datasets", prefix: "nest/sub/", entries: [entry("nest/sub/only_nested.bin")] }) }));
    const agent = await startAgentProcess({ edgeUrl: edge.url, key: nodeKey, cacheDir: join(scratch, "nested"), args: ["--metadata-ttl", "indefinite"] });
    const list = async (prefix: string) => (await fetch(`${agent.url}/datasets?list-type=2&prefix=${prefix}&delimiter=/`)).text();
    const misses = async () => ((await agent.status()) as { metadata: { manifestMisses: number; manifestsLoaded: number } }).metadata;
    try {
      expect(await list("nest/")).toContain("<Prefix>nest/a/</Prefix>");
      expect(await misses()).toMatchObject({ manifestsLoaded: 1, manifestMisses: 0 });
      // Each folder would otherwise cost a GET of its own (absent) manifest first.
      expect(await list("nest/a/")).toContain("<Key>nest/a/x1.bin</Key>");
      expect(await list("nest/b/")).toContain("<Key>nest/b/y0.bin</Key>");
      expect(await list("nest/c/")).toContain("<Key>nest/c/z0.bin</Key>");
      expect(await misses()).toMatchObject({ manifestsLoaded: 1, manifestMisses: 0 });
      const nested = await list("nest/sub/");
      expect(nested).toContain("<Key>nest/sub/only_nested.bin</Key>");
      expect(nested).not.toContain("from_parent");
      expect(await misses()).toMatchObject({ manifestsLoaded: 2, manifestMisses: 0 });
    } finally {
      await agent.stop();
    }
  });

  it("answers LIST and HEAD for a dataset from its manifest, loaded with one GET", async () => {
    const admin = await edge.createKey(["all:datasets"]);
    const writer = new S3Client({ endpoint: edge.url, region: "auto", forcePathStyle: true, credentials: admin });
    const entries = files.map((body, i) => ({ key: `ops/f${i}.bin`, size: body.length, etag: `"${createHash("md5").update(body).digest("hex")}"`, lastModified: new Date().toISOString() }));
    await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: manifestKey("ops/"), Body: await encodeManifest({ bucket: "datasets", prefix: "ops/", entries }) }));
    const agent = await startAgentProcess({ edgeUrl: edge.url, key: nodeKey, cacheDir: join(scratch, "manifest"), args: ["--metadata-ttl", "1"] });
    try {
      const listed = await fetch(`${agent.url}/datasets?list-type=2&prefix=ops/&max-keys=4`);
      const xml = await listed.text();
      expect(xml).toContain("<Key>ops/f0.bin</Key>");
      expect(xml).toContain("<IsTruncated>true</IsTruncated>");
      const head = await fetch(`${agent.url}/datasets/ops/f5.bin`, { method: "HEAD" });
      expect(Number(head.headers.get("content-length"))).toBe(files[5]?.length);
      const got = Buffer.from(await (await fetch(`${agent.url}/datasets/ops/f5.bin`)).arrayBuffer());
      expect(got.equals(files[5] ?? Buffer.alloc(0))).toBe(true);
      // After the TTL the manifest is revalidated (304), not downloaded and parsed again.
      await new Promise((r) => setTimeout(r, 1200));
      expect(await (await fetch(`${agent.url}/datasets?list-type=2&prefix=ops/`)).text()).toContain("<Key>ops/f5.bin</Key>");
      const status = (await agent.status()) as { metadata: { manifestsLoaded: number; manifestLists: number; listMisses: number } };
      expect(status.metadata.manifestsLoaded).toBe(1);
      expect(status.metadata.manifestLists).toBeGreaterThan(0);
      expect(status.metadata.listMisses).toBe(0);
      const metrics = await (await fetch(`${agent.url}/metrics`)).text();
      expect(metrics).toMatch(/ferry_agent_requests_total\{operation="ListObjectsV2",status="200"\} 2/);
      expect(metrics).toMatch(/ferry_agent_request_seconds_bucket\{le="[\d.]+",operation="GetObject"\}/);
      expect(metrics).toMatch(/ferry_agent_stat\{name="manifestsLoaded"\} 1/);
      expect(metrics).not.toContain(nodeKey.secretAccessKey);
    } finally {
      await agent.stop();
    }
  });

  it("with --local-key verifies SigV4: signed requests pass, unsigned and forged ones do not", async () => {
    const local = { accessKeyId: "LOCALKEY000000000001", secretAccessKey: "local-secret" };
    const agent = await startAgentProcess({ edgeUrl: edge.url, key: nodeKey, cacheDir: join(scratch, "localkey"), args: ["--local-key", `${local.accessKeyId}:${local.secretAccessKey}`] });
    try {
      const url = new URL(`${agent.url}/datasets/ops/f0.bin`);
      const good = await fetch(url, { headers: await signRequest({ method: "GET", url, credentials: local }) });
      expect(good.status).toBe(200);
      expect(Buffer.from(await good.arrayBuffer()).equals(files[0] ?? Buffer.alloc(0))).toBe(true);
      const unsigned = await fetch(url);
      expect(unsigned.status).toBe(403);
      const forged = await fetch(url, { headers: await signRequest({ method: "GET", url, credentials: { ...local, secretAccessKey: "wrong" } }) });
      expect(forged.status).toBe(403);
      expect(await forged.text()).toContain("SignatureDoesNotMatch");
    } finally {
      await agent.stop();
    }
  });

  it("a warm killed with -9 resumes by itself after a restart; ferry warm and ferry status report it", async () => {
    const cacheDir = join(scratch, "warm");
    const args = ["--block-size", "64KiB", "--fill-concurrency", "2"];
    let agent = await startAgentProcess({ edgeUrl: edge.url, key: nodeKey, cacheDir, args });
    const started = (await (await fetch(`${agent.url}/_ferry/warm`, { method: "POST", body: JSON.stringify({ bucket: "datasets", prefix: "ops/" }) })).json()) as { id: string };
    for (let i = 0; i < 200; i++) {
      const job = (await (await fetch(`${agent.url}/_ferry/warm/${started.id}`)).json()) as { bytesDone: number };
      if (job.bytesDone > 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await agent.kill9();
    agent = await startAgentProcess({ edgeUrl: edge.url, key: nodeKey, cacheDir, args });
    try {
      let state = "";
      for (let i = 0; i < 300 && state !== "done"; i++) {
        const status = (await agent.status()) as { warmJobs: Array<{ state: string }> };
        state = status.warmJobs[0]?.state ?? "";
        if (state !== "done") await new Promise((r) => setTimeout(r, 100));
      }
      expect(state).toBe("done");
      for (const [i, body] of files.entries()) {
        const got = Buffer.from(await (await fetch(`${agent.url}/datasets/ops/f${i}.bin`)).arrayBuffer());
        expect(got.equals(body)).toBe(true);
      }
      const warm = await runOk(process.execPath, [join(projectRoot, "bin", "ferry.js"), "warm", "s3://datasets/ops/", "--agent", agent.url, "--json"]);
      const last = JSON.parse(warm.stdout.trim().split("\n").at(-1) ?? "{}") as { state: string; files: number; bytes: number; failures: number };
      expect(last).toMatchObject({ state: "done", files: 6, failures: 0 });
      expect(last.bytes).toBe(files.reduce((sum, f) => sum + f.length, 0));
      const shown = await runOk(process.execPath, [join(projectRoot, "bin", "ferry.js"), "status", "--agent", agent.url, "--json"]);
      const status = JSON.parse(shown.stdout) as { cache: { blocks: number }; hitRatio: number };
      expect(status.cache.blocks).toBeGreaterThanOrEqual(files.reduce((sum, f) => sum + Math.ceil(f.length / 65536), 0));
      expect(status.hitRatio).toBeGreaterThan(0);
    } finally {
      await agent.stop();
    }
  });

  it("with the edge gone, serves what is cached and fails misses fast with ServiceUnavailable", async () => {
    const other = await startLocalEdge();
    const admin = await other.createKey(["all:datasets"]);
    const key = await other.createKey(["read,list:datasets"]);
    const writer = new S3Client({ endpoint: other.url, region: "auto", forcePathStyle: true, credentials: admin });
    await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: "down/cached.bin", Body: files[0] }));
    await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: "down/missed.bin", Body: files[1] }));
    const agent = await startAgentProcess({ edgeUrl: other.url, key, cacheDir: join(scratch, "down") });
    try {
      const cached = await fetch(`${agent.url}/datasets/down/cached.bin`);
      expect(Buffer.from(await cached.arrayBuffer()).equals(files[0] ?? Buffer.alloc(0))).toBe(true);
      await other.stop();
      const hit = await fetch(`${agent.url}/datasets/down/cached.bin`);
      expect(hit.status).toBe(200);
      expect(Buffer.from(await hit.arrayBuffer()).equals(files[0] ?? Buffer.alloc(0))).toBe(true);
      const started = Date.now();
      const miss = await fetch(`${agent.url}/datasets/down/missed.bin`);
      expect(miss.status).toBe(503);
      expect(await miss.text()).toContain("<Code>ServiceUnavailable</Code>");
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      await agent.stop();
      await other.stop();
    }
  }, 120_000);

  it("refuses a cache dir that is a file with a one-line error", async () => {
    const file = join(scratch, "not-a-dir");
    writeFileSync(file, "x");
    const agent = await startAgentProcess({ edgeUrl: edge.url, key: nodeKey, cacheDir: file, waitReady: false });
    const code = await new Promise<number | null>((resolve) => agent.child.once("exit", (c) => resolve(c)));
    expect(code).not.toBe(0);
    const lines = agent.output().trim().split("\n").filter((l) => l.startsWith("ferry:"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/cache/i);
  });
});

function createHashHex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}
