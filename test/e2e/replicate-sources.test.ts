// `ferry replicate` from a local folder (file://) and from another S3 endpoint (s3://)
// into a real edge, plus writing through --endpoint (R2's own S3 API in production) and
// the plain-text report. GCS sources are covered in replicate.test.ts.
import { HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { createHash, randomBytes } from "node:crypto";
import { utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { manifestKey, parseManifest } from "../../s3/manifest.ts";
import { createS3Destination } from "../../replicator/src/dest/s3-destination.ts";
import { listDestination } from "../../replicator/src/dest/ranged-list.ts";
import { createS3Client } from "../../replicator/src/s3-client.ts";
import { closeEdgeFixture, type EdgeFixture, openEdgeFixture, scratchDir } from "../helpers/edge-fixture.ts";
import type { LocalEdge, TestKey } from "../helpers/local-edge.ts";
import { ferry, getBytes, writeTree } from "../helpers/real-clients.ts";

const MiB = 1024 * 1024;
let fixture: EdgeFixture;
let edge: LocalEdge;
let key: TestKey;
let sdk: S3Client;
let work: string;

const sha = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

function env(extra: Record<string, string> = {}): Record<string, string> {
  return { FERRY_EDGE_URL: edge.url, FERRY_ACCESS_KEY_ID: key.accessKeyId, FERRY_SECRET_ACCESS_KEY: key.secretAccessKey, ...extra };
}

async function replicate(args: string[], extra: Record<string, string> = {}) {
  const r = await ferry(["replicate", ...args, "--json", "--part-size", "5MiB"], env(extra));
  const events = r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  return { ...r, events, summary: events.at(-1) ?? {}, copiedKeys: events.filter((e) => e["type"] === "copied").map((e) => String(e["key"])) };
}

async function keysUnder(prefix: string): Promise<string[]> {
  const r = await sdk.send(new ListObjectsV2Command({ Bucket: "datasets", Prefix: prefix }));
  return (r.Contents ?? []).map((o) => o.Key ?? "").sort();
}

beforeAll(async () => {
  fixture = await openEdgeFixture({ scratchPrefix: "ferry-replicate-", grants: ["all:datasets/"], keyName: "replicator" });
  ({ edge, key, sdk, work } = fixture);
}, 120_000);

afterAll(() => closeEdgeFixture(fixture), 60_000);

describe("ferry replicate file:// → edge", () => {
  const files: Record<string, Uint8Array> = {
    "a.h5": randomBytes(1234),
    "nested/deeper/b.h5": randomBytes(50_000),
    "nested/c.h5": randomBytes(0),
    "large.h5": randomBytes(11 * MiB),
  };

  it("copies a folder, then copies nothing, then only what changed", async () => {
    const dir = join(work, "folder");
    writeTree(dir, files);
    const first = await replicate([`file://${dir}`, "s3://datasets/from-file/"]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.summary).toMatchObject({ copied: 4, failed: 0, egressUsd: 0 });
    // Small files have no checksum of their own; the large one is hashed in a pre-pass.
    expect(first.summary["unverified"]).toBe(3);
    expect(first.events.find((e) => e["key"] === "from-file/large.h5")).toMatchObject({ parts: 3, verification: "source-checksum" });
    for (const [name, data] of Object.entries(files)) expect(sha(await getBytes(sdk, "datasets", `from-file/${name}`))).toBe(sha(data));
    const head = await sdk.send(new HeadObjectCommand({ Bucket: "datasets", Key: "from-file/large.h5" }));
    expect(head.Metadata?.["ferry-source"]).toBe(`file://${dir}/large.h5`);
    expect(head.Metadata?.["ferry-md5"]).toBe(createHash("md5").update(files["large.h5"] as Uint8Array).digest("base64"));

    const noop = await replicate([`file://${dir}`, "s3://datasets/from-file/"]);
    expect(noop.summary).toMatchObject({ copied: 0, skipped: 4, sourceBytesRead: 0 });

    files["nested/c.h5"] = randomBytes(99);
    writeFileSync(join(dir, "nested/c.h5"), files["nested/c.h5"]);
    utimesSync(join(dir, "a.h5"), new Date(), new Date(Date.now() + 5000)); // touched, same bytes: recopied (no checksum to prove otherwise)
    const changed = await replicate([`file://${dir}`, "s3://datasets/from-file/"]);
    expect(changed.copiedKeys.sort()).toEqual(["from-file/a.h5", "from-file/nested/c.h5"]);
    const manifest = await parseManifest(await getBytes(sdk, "datasets", manifestKey("from-file/")));
    expect(manifest.entries.map((e) => e.key)).toEqual(["from-file/a.h5", "from-file/large.h5", "from-file/nested/c.h5", "from-file/nested/deeper/b.h5"]);
    expect(manifest.entries.find((e) => e.key === "from-file/nested/c.h5")?.size).toBe(99);
  }, 120_000);

  it("writes through --endpoint with the same code, and reports in plain text without --json", async () => {
    const dir = join(work, "endpoint");
    writeTree(dir, { "x.bin": randomBytes(5000), "y.bin": randomBytes(7000) });
    const r = await ferry(["replicate", `file://${dir}`, "s3://datasets/via-endpoint/", "--endpoint", edge.url], env({ FERRY_EDGE_URL: "http://127.0.0.1:1" }));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^copied 2 object\(s\) \(11\.7 KiB\), skipped 0, failed 0 in [\d.]+ s/);
    expect(r.stdout).toMatch(/manifest: s3:\/\/datasets\/\.ferry\/manifests\/via-endpoint\/manifest\.ndjson\.gz \(2 objects, updated\)/);
    // Not a terminal: logs are JSON lines on stderr.
    for (const line of r.stderr.trim().split("\n")) expect(() => JSON.parse(line) as unknown).not.toThrow();
    expect(await keysUnder("via-endpoint/")).toEqual(["via-endpoint/x.bin", "via-endpoint/y.bin"]);
  });

  it("--dry-run lists what it would do and writes nothing", async () => {
    const dir = join(work, "dry");
    writeTree(dir, { "p.bin": randomBytes(10), "q.bin": randomBytes(20) });
    const r = await replicate([`file://${dir}`, "s3://datasets/dry/", "--dry-run"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.events.filter((e) => e["type"] === "would-copy").map((e) => e["key"]).sort()).toEqual(["dry/p.bin", "dry/q.bin"]);
    expect(r.summary).toMatchObject({ dryRun: true, copied: 2, bytes: 30 });
    expect(await keysUnder("dry/")).toEqual([]);
    expect(await keysUnder(".ferry/manifests/dry/")).toEqual([]);
  });

  it("refuses a missing folder with one line and writes nothing", async () => {
    const r = await ferry(["replicate", `file://${work}/does-not-exist`, "s3://datasets/nothing/"], env());
    expect(r.code).toBe(1);
    expect(r.stderr.split("\n").filter((l) => l.startsWith("ferry:"))).toEqual([`ferry: source folder does not exist: ${work}/does-not-exist`]);
    expect(await keysUnder("nothing/")).toEqual([]);
  });
});

describe("ferry replicate s3:// → edge", () => {
  it("copies from another S3 endpoint, verified by the source's MD5 ETag; multipart sources are reported unverified", async () => {
    const small = randomBytes(40_000);
    const big = randomBytes(12 * MiB);
    await sdk.send(new PutObjectCommand({ Bucket: "datasets", Key: "s3-origin/small.bin", Body: small }));
    await new Upload({ client: sdk, params: { Bucket: "datasets", Key: "s3-origin/big.bin", Body: big }, partSize: 5 * MiB }).done();
    const sourceKey = { FERRY_SOURCE_ACCESS_KEY_ID: key.accessKeyId, FERRY_SOURCE_SECRET_ACCESS_KEY: key.secretAccessKey };
    const r = await replicate(["s3://datasets/s3-origin/", "s3://datasets/s3-copy/", "--source-endpoint", edge.url], sourceKey);
    expect(r.code, r.stderr).toBe(0);
    expect(r.summary).toMatchObject({ copied: 2, failed: 0, unverified: 1 });
    expect(r.events.find((e) => e["key"] === "s3-copy/small.bin")).toMatchObject({ verification: "source-checksum" });
    expect(r.events.find((e) => e["key"] === "s3-copy/big.bin")).toMatchObject({ verification: "no-source-checksum", parts: 3 });
    expect(sha(await getBytes(sdk, "datasets", "s3-copy/big.bin"))).toBe(sha(big));
    const head = await sdk.send(new HeadObjectCommand({ Bucket: "datasets", Key: "s3-copy/small.bin" }));
    expect(head.Metadata?.["ferry-source"]).toBe("s3://datasets/s3-origin/small.bin");
    expect(head.Metadata?.["ferry-md5"]).toBe(createHash("md5").update(small).digest("base64"));
    const manifest = await parseManifest(await getBytes(sdk, "datasets", manifestKey("s3-copy/")));
    expect(manifest.entries.find((e) => e.key === "s3-copy/big.bin")?.crc32c).toBeTruthy();
    const again = await replicate(["s3://datasets/s3-origin/", "s3://datasets/s3-copy/", "--source-endpoint", edge.url], sourceKey);
    expect(again.summary).toMatchObject({ copied: 0, skipped: 2 });
  }, 120_000);

  it("says which key is missing for an s3:// source", async () => {
    const r = await ferry(["replicate", "s3://datasets/s3-origin/", "s3://datasets/s3-copy2/", "--source-endpoint", edge.url], env({ FERRY_ACCESS_KEY_ID: "", FERRY_SECRET_ACCESS_KEY: "", AWS_ACCESS_KEY_ID: "", AWS_SECRET_ACCESS_KEY: "" }));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^ferry: no key for s3:\/\/datasets\/s3-copy2\/: set FERRY_ACCESS_KEY_ID/);
  });

  it("lists a prefix in key ranges exactly as one listing does, keys between and beyond the bounds included", async () => {
    // Bounds as a large run takes them from its index; the destination also holds keys no
    // index names (before, between and after the bounds, and beyond U+FFFF, where UTF-16
    // and S3's UTF-8 order differ).
    const names = ["a", "b/1", "b/2", "c", "d\uFFFD", "d\u{1F600}", "e", "z/9"];
    for (const name of names) await sdk.send(new PutObjectCommand({ Bucket: "datasets", Key: `ranges/${name}`, Body: name }));
    await sdk.send(new PutObjectCommand({ Bucket: "datasets", Key: "rangesX/outside", Body: "x" }));
    const dest = createS3Destination({ bucket: "datasets", s3: createS3Client({ endpoint: edge.url, region: "auto", credentials: key }), endpoint: edge.url, credentials: key, describe: "the test edge" });
    try {
      const plain = [...(await listDestination(dest, "ranges/", [])).keys()];
      expect(plain).toEqual(names.map((n) => `ranges/${n}`));
      for (const bounds of [["ranges/b/1"], ["ranges/a", "ranges/c", "ranges/d\uFFFD"], ["ranges/0", "ranges/b/15", "ranges/zz"]]) {
        expect([...(await listDestination(dest, "ranges/", bounds)).keys()].sort()).toEqual([...plain].sort());
      }
    } finally {
      dest.close();
    }
  });
});
