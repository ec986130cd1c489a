// `ferry replicate` from GCS into a real edge: the Cloud Storage emulator (in-process,
// from firebase-tools) behind a proxy that counts downloads and can flip bytes, the edge
// under `wrangler dev`, and the `ferry` CLI as a real child process. One edge and one
// emulator serve the file; every test uses its own source and destination prefixes.
import { HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { Storage } from "@google-cloud/storage";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { manifestKey, parseManifest } from "../../s3/manifest.ts";
import { projectRoot } from "../../scripts/lib/edge-process.ts";
import { startGcsEmulator, startGcsProxy, type GcsEmulator, type GcsProxy } from "../helpers/gcs-emulator.ts";
import { startLocalEdge, type LocalEdge, type TestKey } from "../helpers/local-edge.ts";
import { clientEnv, ferry, getBytes, s3Client, type RunResult } from "../helpers/real-clients.ts";

const MiB = 1024 * 1024;
/** The issue asks for 200 MiB; the local edge writes about 6-8 MB/s, so CI uses a smaller
 * object that still spans many equal parts. FERRY_TEST_LARGE_MIB=200 runs the full size. */
const LARGE_MIB = Number(process.env["FERRY_TEST_LARGE_MIB"] ?? 40);
const BUCKET = "processed";

let emulator: GcsEmulator;
let proxy: GcsProxy;
let edge: LocalEdge;
let key: TestKey;
let sdk: S3Client;
let storage: Storage;

interface Replication extends RunResult {
  events: Array<Record<string, unknown>>;
  summary: Record<string, unknown>;
  copiedKeys: string[];
}

function baseEnv(withEmulator = true): Record<string, string> {
  return { ...(withEmulator ? { STORAGE_EMULATOR_HOST: proxy.url } : {}), FERRY_EDGE_URL: edge.url, FERRY_ACCESS_KEY_ID: key.accessKeyId, FERRY_SECRET_ACCESS_KEY: key.secretAccessKey };
}

function parse(result: RunResult): Replication {
  const events = result.stdout.split("\n").filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
  const summary = events.at(-1) ?? {};
  const copiedKeys = events.filter((e) => e["type"] === "copied").map((e) => String(e["key"]));
  return { ...result, events, summary, copiedKeys };
}

async function replicate(args: string[], env: Record<string, string> = {}): Promise<Replication> {
  return parse(await ferry(["replicate", ...args, "--json", "--part-size", "5MiB"], { ...baseEnv(), ...env }));
}

async function seed(files: Record<string, Uint8Array>): Promise<void> {
  // Straight to the emulator (not through the counting proxy), a few at a time: the
  // emulator resets connections when a loaded machine hands it dozens at once. Seeding is
  // test setup, not what is under test, so a reset upload is simply sent again.
  const queue = Object.entries(files);
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const [name, data] = next;
      for (let attempt = 1; ; attempt++) {
        try {
          await storage.bucket(BUCKET).file(name).save(Buffer.from(data), { resumable: false });
          break;
        } catch (error) {
          if (attempt >= 4) throw error;
          await new Promise((r) => setTimeout(r, 200 * attempt));
        }
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
}

function sha(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

async function listDest(prefix: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let token: string | undefined;
  do {
    const page = await sdk.send(new ListObjectsV2Command({ Bucket: "datasets", Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) out.set(o.Key ?? "", o.Size ?? 0);
    token = page.NextContinuationToken;
  } while (token);
  return out;
}

async function pendingUploads(prefix: string): Promise<number> {
  const r = await sdk.send(new ListMultipartUploadsCommand({ Bucket: "datasets", Prefix: prefix }));
  return r.Uploads?.length ?? 0;
}

function dataset(prefix: string, count: number, bytes: (i: number) => number): Record<string, Uint8Array> {
  const files: Record<string, Uint8Array> = {};
  for (let i = 0; i < count; i++) files[`${prefix}${i % 3 === 0 ? "sub/" : ""}episode_${String(i).padStart(4, "0")}.h5`] = randomBytes(bytes(i));
  return files;
}

beforeAll(async () => {
  [emulator, edge] = await Promise.all([startGcsEmulator(), startLocalEdge()]);
  proxy = await startGcsProxy(emulator.url);
  key = await edge.createKey(["all:datasets/"], { name: "replicator" });
  sdk = s3Client(edge.url, key);
  storage = new Storage({ projectId: "ferry-test", apiEndpoint: emulator.url });
}, 120_000);

afterAll(async () => {
  sdk?.destroy();
  await proxy?.stop();
  await Promise.all([edge?.stop(), emulator?.stop()]);
}, 60_000);

describe("ferry replicate gs:// → edge", () => {
  const files = dataset("robots/run-1/", 24, (i) => 1000 + i * 997);

  it("copies everything once, verified, with lineage and a manifest", async () => {
    await seed(files);
    const r = await replicate([`gs://${BUCKET}/robots/run-1/`, "s3://datasets/mirror/run-1/"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.summary).toMatchObject({ type: "summary", copied: 24, skipped: 0, failed: 0, unverified: 0, bytes: Object.values(files).reduce((s, f) => s + f.length, 0) });
    expect(r.summary["egressUsd"]).toBeGreaterThan(0);
    expect(r.summary["seconds"]).toBeGreaterThan(0);
    for (const [name, data] of Object.entries(files)) {
      const destKey = `mirror/run-1/${name.slice("robots/run-1/".length)}`;
      expect(sha(await getBytes(sdk, "datasets", destKey))).toBe(sha(data));
    }
    // Lineage: the GCS generation and checksums, as recorded metadata.
    const name = "robots/run-1/sub/episode_0000.h5";
    const [meta] = await storage.bucket(BUCKET).file(name).getMetadata();
    const head = await sdk.send(new HeadObjectCommand({ Bucket: "datasets", Key: "mirror/run-1/sub/episode_0000.h5" }));
    expect(head.Metadata).toMatchObject({
      "ferry-source": `gs://${BUCKET}/${name}`,
      "ferry-source-version": String(meta.generation),
      "ferry-source-size": String(files[name]?.length),
      "ferry-crc32c": meta.crc32c,
      "ferry-md5": meta.md5Hash,
    });
    // The manifest for the dataset prefix (the run's DEST prefix) lists every object.
    const manifest = await parseManifest(await getBytes(sdk, "datasets", manifestKey("mirror/run-1/")));
    expect(manifest.header).toMatchObject({ bucket: "datasets", prefix: "mirror/run-1/", objects: 24 });
    const entry = manifest.entries.find((e) => e.key === "mirror/run-1/sub/episode_0000.h5");
    expect(entry).toMatchObject({ size: files[name]?.length, crc32c: meta.crc32c, md5: meta.md5Hash });
    expect(entry?.etag).toBe(head.ETag);
  });

  it("a rerun over an unchanged source reads no object body and lists the destination once", async () => {
    const before = [...proxy.downloads.values()].reduce((a, b) => a + b, 0);
    const r = await replicate([`gs://${BUCKET}/robots/run-1/`, "s3://datasets/mirror/run-1/"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.summary).toMatchObject({ copied: 0, skipped: 24, failed: 0, bytes: 0, sourceBytesRead: 0, egressUsd: 0 });
    expect([...proxy.downloads.values()].reduce((a, b) => a + b, 0)).toBe(before);
    const requests = r.summary["destRequests"] as Record<string, number>;
    // One LIST of the data prefix, one of the index folder, the upload sweep, two write
    // probes, and two small GETs (index, manifest); never a HEAD or PUT per object.
    expect(requests).toEqual({ ListObjectsV2: 2, ListMultipartUploads: 3, GetObject: 2 });
  });

  it("recopies a changed object (new generation), not one rewritten with the same bytes", async () => {
    const changed = "robots/run-1/episode_0001.h5";
    const same = "robots/run-1/episode_0002.h5";
    files[changed] = randomBytes(4321);
    await seed({ [changed]: files[changed], [same]: files[same] as Uint8Array });
    const r = await replicate([`gs://${BUCKET}/robots/run-1/`, "s3://datasets/mirror/run-1/"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.copiedKeys).toEqual(["mirror/run-1/episode_0001.h5"]);
    expect(r.summary).toMatchObject({ copied: 1, skipped: 23, sameContent: 1 });
    expect(sha(await getBytes(sdk, "datasets", "mirror/run-1/episode_0001.h5"))).toBe(sha(files[changed] as Uint8Array));
    const manifest = await parseManifest(await getBytes(sdk, "datasets", manifestKey("mirror/run-1/")));
    expect(manifest.entries.find((e) => e.key === "mirror/run-1/episode_0001.h5")?.size).toBe(4321);
  });

  it("deletes what the source no longer has only with --delete", async () => {
    await storage.bucket(BUCKET).file("robots/run-1/episode_0004.h5").delete();
    const kept = await replicate([`gs://${BUCKET}/robots/run-1/`, "s3://datasets/mirror/run-1/"]);
    expect(kept.summary).toMatchObject({ copied: 0, deleted: 0 });
    expect((await listDest("mirror/run-1/")).has("mirror/run-1/episode_0004.h5")).toBe(true);
    const dry = await replicate([`gs://${BUCKET}/robots/run-1/`, "s3://datasets/mirror/run-1/", "--delete", "--dry-run"]);
    expect(dry.events.filter((e) => e["type"] === "would-delete").map((e) => e["key"])).toEqual(["mirror/run-1/episode_0004.h5"]);
    expect((await listDest("mirror/run-1/")).has("mirror/run-1/episode_0004.h5")).toBe(true);
    const r = await replicate([`gs://${BUCKET}/robots/run-1/`, "s3://datasets/mirror/run-1/", "--delete"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.summary).toMatchObject({ copied: 0, deleted: 1 });
    expect((await listDest("mirror/run-1/")).has("mirror/run-1/episode_0004.h5")).toBe(false);
    const manifest = await parseManifest(await getBytes(sdk, "datasets", manifestKey("mirror/run-1/")));
    expect(manifest.header.objects).toBe(23);
  });

  it(`copies a ${LARGE_MIB} MiB object in equal parts, with bounded memory`, async () => {
    const big = randomBytes(LARGE_MIB * MiB);
    await emulator.putLarge(BUCKET, "large/trajectory.h5", big);
    const r = await replicate([`gs://${BUCKET}/large/`, "s3://datasets/large/", "--memory-budget", "20MiB"]);
    expect(r.code, r.stderr).toBe(0);
    const copied = r.events.find((e) => e["type"] === "copied");
    expect(copied).toMatchObject({ key: "large/trajectory.h5", bytes: big.length, parts: Math.ceil(LARGE_MIB / 5), verification: "source-checksum" });
    expect(sha(await getBytes(sdk, "datasets", "large/trajectory.h5"))).toBe(sha(big));
    const head = await sdk.send(new HeadObjectCommand({ Bucket: "datasets", Key: "large/trajectory.h5" }));
    const [meta] = await storage.bucket(BUCKET).file("large/trajectory.h5").getMetadata();
    expect(head.Metadata?.["ferry-crc32c"]).toBe(meta.crc32c);
    expect(await pendingUploads("large/")).toBe(0);
  }, 180_000);

  it("catches corrupted transfers by checksum: retries, then fails loudly, never stores bad bytes", async () => {
    const small = randomBytes(300_000);
    const always = randomBytes(200_000);
    const multi = randomBytes(10.5 * MiB);
    await seed({ "corrupt/once.bin": small, "corrupt/always.bin": always, "corrupt/multi.bin": multi });
    proxy.corrupt("corrupt/once.bin", 1);
    proxy.corrupt("corrupt/always.bin", Number.POSITIVE_INFINITY);
    proxy.corrupt("corrupt/multi.bin", 1);
    const r = await replicate([`gs://${BUCKET}/corrupt/`, "s3://datasets/corrupt/", "--attempts", "2"]);
    expect(r.code).toBe(1);
    expect(r.summary).toMatchObject({ copied: 2, failed: 1 });
    expect(r.events.find((e) => e["key"] === "corrupt/once.bin")).toMatchObject({ type: "copied", attempts: 2 });
    expect(r.events.find((e) => e["key"] === "corrupt/multi.bin")).toMatchObject({ type: "copied", attempts: 2, parts: 3 });
    const failed = r.events.find((e) => e["key"] === "corrupt/always.bin");
    expect(failed).toMatchObject({ type: "failed", attempts: 2 });
    expect(String(failed?.["error"])).toMatch(/checksum mismatch.*(CRC32C|MD5)/);
    expect(r.stderr).toMatch(/some objects failed/);
    expect(sha(await getBytes(sdk, "datasets", "corrupt/once.bin"))).toBe(sha(small));
    expect(sha(await getBytes(sdk, "datasets", "corrupt/multi.bin"))).toBe(sha(multi));
    expect((await listDest("corrupt/")).has("corrupt/always.bin")).toBe(false);
    expect(await pendingUploads("corrupt/")).toBe(0);
    proxy.corrupt("corrupt/always.bin", 0);
    const again = await replicate([`gs://${BUCKET}/corrupt/`, "s3://datasets/corrupt/"]);
    expect(again.copiedKeys).toEqual(["corrupt/always.bin"]);
  }, 120_000);

  it("survives kill -9 mid-run: no partial object visible, nothing recopied, stale upload aborted", async () => {
    const kfiles = dataset("kill/", 30, () => 200 * 1024);
    kfiles["kill/a-large.h5"] = randomBytes(15 * MiB);
    await seed(kfiles);
    const child = spawn(process.execPath, [join(projectRoot, "bin", "ferry.js"), "replicate", `gs://${BUCKET}/kill/`, "s3://datasets/kill/", "--json", "--part-size", "5MiB", "--bwlimit", "2MiB", "--concurrency", "4"], {
      env: clientEnv(undefined, baseEnv()),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (_code, signal) => resolve(signal === "SIGKILL" ? -9 : _code)));
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const copied = stdout.split("\n").filter((l) => l.includes('"type":"copied"')).length;
      if (copied >= 5 && (await pendingUploads("kill/")) > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill("SIGKILL");
    expect(await exited).toBe(-9);
    const firstCopied = parse({ code: null, stdout, stderr: "" }).copiedKeys;
    expect(firstCopied.length).toBeGreaterThanOrEqual(5);
    // Whatever is visible is whole; the large object is not visible half-written.
    const visible = await listDest("kill/");
    expect(visible.has("kill/a-large.h5")).toBe(false);
    for (const [destKey, size] of visible) {
      if (destKey.startsWith(".ferry/")) continue;
      expect(size).toBe(kfiles[destKey]?.length);
      expect(sha(await getBytes(sdk, "datasets", destKey))).toBe(sha(kfiles[destKey] as Uint8Array));
    }
    expect(await pendingUploads("kill/")).toBe(1);

    const r = await replicate([`gs://${BUCKET}/kill/`, "s3://datasets/kill/"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.summary["staleUploadsAborted"]).toBe(1);
    // Exactly what was not yet visible is copied: nothing twice.
    expect(new Set(r.copiedKeys)).toEqual(new Set(Object.keys(kfiles).filter((k) => !visible.has(k))));
    expect(r.copiedKeys.filter((k) => firstCopied.includes(k))).toEqual([]);
    expect(await pendingUploads("kill/")).toBe(0);
    expect(sha(await getBytes(sdk, "datasets", "kill/a-large.h5"))).toBe(sha(kfiles["kill/a-large.h5"] as Uint8Array));
  }, 120_000);

  it("shards 0/3, 1/3 and 2/3 together cover the source exactly once", async () => {
    const sfiles = dataset("sharded/", 45, (i) => 500 + i);
    await seed(sfiles);
    const runs = await Promise.all([0, 1, 2].map((i) => replicate([`gs://${BUCKET}/sharded/`, "s3://datasets/sharded/", "--shard", `${i}/3`])));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const all = runs.flatMap((r) => r.copiedKeys);
    expect(all.length).toBe(45);
    expect(new Set(all)).toEqual(new Set(Object.keys(sfiles)));
    for (const r of runs) expect(r.copiedKeys.length).toBeGreaterThan(5); // a real split, not one shard doing it all
    const manifest = await parseManifest(await getBytes(sdk, "datasets", manifestKey("sharded/")));
    expect(manifest.entries.map((e) => e.key).sort()).toEqual(Object.keys(sfiles).sort());
    const again = await replicate([`gs://${BUCKET}/sharded/`, "s3://datasets/sharded/", "--shard", "1/3"]);
    expect(again.summary).toMatchObject({ copied: 0, listed: runs[1]?.copiedKeys.length });
  }, 120_000);

  it("--schedule never runs twice at once: a slow run makes the next tick skip, and says so", async () => {
    await seed({ "sched/a.bin": randomBytes(1536 * 1024), "sched/b.bin": randomBytes(1536 * 1024) });
    const child = spawn(process.execPath, [join(projectRoot, "bin", "ferry.js"), "replicate", `gs://${BUCKET}/sched/`, "s3://datasets/sched/", "--json", "--schedule", "* * * * * *", "--bwlimit", "1MiB"], {
      env: clientEnv(undefined, baseEnv()),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    let stdout = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && (stderr.match(/"run finished"/g)?.length ?? 0) < 2) await new Promise((r) => setTimeout(r, 100));
    child.kill("SIGTERM");
    await exited;
    const log = stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { msg: string });
    let active = 0;
    for (const line of log) {
      if (line.msg === "run started") active++;
      if (line.msg === "run finished") active--;
      expect(active).toBeLessThanOrEqual(1);
    }
    expect(log.filter((l) => l.msg === "run finished").length).toBeGreaterThanOrEqual(2);
    expect(log.filter((l) => l.msg.startsWith("scheduled run skipped")).length).toBeGreaterThanOrEqual(1);
    const summaries = stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e["type"] === "summary");
    expect(summaries[0]).toMatchObject({ copied: 2 });
    expect(summaries[1]).toMatchObject({ copied: 0, skipped: 2 });
  }, 60_000);

  it("bad input: one line, non-zero exit, nothing written", async () => {
    const before = await listDest("");
    const cases: Array<{ args: string[]; env?: Record<string, string>; message: RegExp }> = [
      { args: ["ftp://host/x", "s3://datasets/bad/"], message: /unknown scheme "ftp:\/\/"/ },
      { args: ["gs://", "s3://datasets/bad/"], message: /names no bucket/ },
      { args: [`gs://${BUCKET}/robots/run-1/`, "gs://other/x"], message: /DEST must be s3:\/\// },
      { args: [`gs://${BUCKET}/robots/run-1/`, "s3://datasets/bad/", "--shard", "3/3"], message: /--shard must be i\/N/ },
      { args: [`gs://${BUCKET}/robots/run-1/`, "s3://datasets/bad/", "--schedule", "every hour"], message: /--schedule is not a cron expression/ },
      { args: [`gs://${BUCKET}/no-such-prefix/`, "s3://datasets/bad/"], message: /source is empty or does not exist: gs:\/\/processed\/no-such-prefix\// },
      { args: [`gs://${BUCKET}/robots/run-1/`, "s3://no-such-bucket/bad/"], message: /destination bucket does not exist: s3:\/\/no-such-bucket/ },
      { args: [`gs://${BUCKET}/robots/run-1/`, "s3://datasets/bad/"], env: { FERRY_ACCESS_KEY_ID: "", FERRY_SECRET_ACCESS_KEY: "" }, message: /no key for s3:\/\/datasets\/bad\/: set FERRY_ACCESS_KEY_ID/ },
      { args: [`gs://${BUCKET}/robots/run-1/`, "s3://datasets/bad/"], env: { GOOGLE_APPLICATION_CREDENTIALS: "/nonexistent/key.json" }, message: /no Google credentials: set GOOGLE_APPLICATION_CREDENTIALS/ },
    ];
    for (const c of cases) {
      const r = await ferry(["replicate", ...c.args], { ...baseEnv(!c.env?.["GOOGLE_APPLICATION_CREDENTIALS"]), ...(c.env ?? {}) });
      expect(r.code, `${c.args.join(" ")}: ${r.stderr}`).not.toBe(0);
      const lines = r.stderr.trim().split("\n").filter((l) => !l.startsWith("{"));
      expect(lines.length, r.stderr).toBe(1);
      expect(lines[0]).toMatch(/^ferry: /);
      expect(lines[0]).toMatch(c.message);
    }
    const readOnly = await edge.createKey(["read,list:datasets/"], { name: "reader" });
    const denied = await ferry(["replicate", `gs://${BUCKET}/robots/run-1/`, "s3://datasets/bad/"], { ...baseEnv(), FERRY_ACCESS_KEY_ID: readOnly.accessKeyId, FERRY_SECRET_ACCESS_KEY: readOnly.secretAccessKey });
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/the key may not write s3:\/\/datasets\/(bad\/|\.ferry\/)/);
    expect(await listDest("")).toEqual(before);
  }, 120_000);
});
