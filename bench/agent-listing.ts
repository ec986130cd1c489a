// The metadata side of a job start, for bench:agent: a 100,000-object data set whose
// replicator manifest sits in the edge, listed through the agent's S3 endpoint
// (ListObjectsV2 pages of 1,000; the first listing loads the manifest with one GET) and
// walked through the agent's mount (readdir of every folder, then again with a stat of
// every file), against the same tree walked on local disk. The objects themselves are not
// uploaded (100,000 PUTs take minutes on the local edge): LIST, readdir and stat are
// answered from the manifest, which is what is measured.
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodeManifest, manifestKey, type ManifestEntry } from "../s3/manifest.ts";
import { dropPageCache } from "./train/page-cache.ts";

export const LISTING_TARGET_MS = 1000;

export interface ListingSet {
  /** Dataset prefix, ending in "/". */
  prefix: string;
  folders: number;
  filesPerFolder: number;
}

export interface ListingResult {
  objects: number;
  /** A plain HTTP client paging through every key: first listing (loads the manifest), then the best of the rest. */
  s3FirstMs: number;
  s3LoadedMs: number;
  /** The same listing through the AWS SDK v3 (its XML parsing included), best of rounds. */
  sdkLoadedMs: number;
  /** Walks (readdir of every folder), and walks with a stat of every file: each side's first pass (after a drop of the kernel's caches), then the best of the rest. */
  walk: WalkTimes;
  walkStat: WalkTimes;
}

export interface WalkTimes {
  /** Whether the kernel's caches could be dropped before the first passes (root, writable /proc/sys). */
  cachesDropped: boolean;
  mountFirstMs: number;
  localFirstMs: number;
  mountMs: number;
  localMs: number;
}

function keysOf(set: ListingSet): string[] {
  const keys: string[] = [];
  for (let f = 0; f < set.folders; f++) {
    for (let i = 0; i < set.filesPerFolder; i++) keys.push(`${set.prefix}part-${String(f).padStart(3, "0")}/item_${String(f * set.filesPerFolder + i).padStart(6, "0")}.bin`);
  }
  return keys;
}

/** The set's manifest, as `ferry replicate` would publish it (key, size, ETag, date, CRC32C). */
export async function listingManifest(bucket: string, set: ListingSet): Promise<{ key: string; body: Uint8Array }> {
  const entries: ManifestEntry[] = keysOf(set).map((key, i) => ({ key, size: sizeOf(i), etag: `"${i.toString(16).padStart(32, "0")}"`, lastModified: new Date(Date.UTC(2026, 11, 1) + i * 1013).toISOString(), crc32c: "AAAAAA==" }));
  return { key: manifestKey(set.prefix), body: await encodeManifest({ bucket, prefix: set.prefix, entries }) };
}

/** Sizes differ per object, so a stat through the mount that returned the wrong entry would show in the sum. */
function sizeOf(i: number): number {
  return 100_000 + (i % 4096);
}

/** The same tree of (empty) files on local disk, for the walks to compare with. */
export function writeLocalTree(root: string, set: ListingSet): void {
  for (const key of keysOf(set)) {
    const path = join(root, key);
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(path, "");
  }
}

/** Every key under the prefix with a bare HTTP client (unsigned: the agent takes those on loopback). */
async function listPlain(agentUrl: string, bucket: string, prefix: string): Promise<number> {
  let count = 0;
  let token: string | undefined;
  do {
    const url = new URL(`${agentUrl}/${bucket}`);
    url.searchParams.set("list-type", "2");
    url.searchParams.set("prefix", prefix);
    url.searchParams.set("max-keys", "1000");
    if (token) url.searchParams.set("continuation-token", token);
    const response = await fetch(url);
    const xml = await response.text();
    if (!response.ok) throw new Error(`LIST through the agent failed: ${response.status} ${xml.slice(0, 200)}`);
    count += xml.split("<Key>").length - 1;
    token = /<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(xml)?.[1];
  } while (token);
  return count;
}

async function listSdk(client: S3Client, bucket: string, prefix: string): Promise<number> {
  let count = 0;
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: 1000, ContinuationToken: token }));
    count += page.KeyCount ?? 0;
    token = page.NextContinuationToken;
  } while (token);
  return count;
}

/** readdir of the prefix's folders (as os.walk does), optionally with a stat of every file: files seen and bytes stat'ed. */
function walk(root: string, withStat: boolean): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const folder of readdirSync(root, { withFileTypes: true })) {
    if (!folder.isDirectory()) continue;
    const dir = join(root, folder.name);
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isFile()) continue;
      if (withStat) bytes += statSync(join(dir, entry.name)).size;
      files++;
    }
  }
  return { files, bytes };
}

function timed<T>(run: () => T): { ms: number; value: T } {
  const t0 = performance.now();
  const value = run();
  return { ms: performance.now() - t0, value };
}

async function timedAsync<T>(run: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await run();
  return { ms: performance.now() - t0, value };
}

function expectCount(what: string, got: number, want: number): void {
  if (got !== want) throw new Error(`${what} saw ${got} objects, not ${want}`);
}

/**
 * Lists and walks the set (its manifest already in the edge, its local tree written) and
 * checks every pass saw every object. Mount and local walks alternate, best of `rounds`.
 */
export async function listingBench(options: { agentUrl: string; bucket: string; set: ListingSet; mountRoot: string; localRoot: string; rounds: number }): Promise<ListingResult> {
  const { agentUrl, bucket, set, rounds } = options;
  const objects = set.folders * set.filesPerFolder;
  const first = await timedAsync(() => listPlain(agentUrl, bucket, set.prefix));
  expectCount("the first LIST", first.value, objects);
  let s3LoadedMs = Number.POSITIVE_INFINITY;
  let sdkLoadedMs = Number.POSITIVE_INFINITY;
  const client = new S3Client({ endpoint: agentUrl, region: "auto", forcePathStyle: true, credentials: { accessKeyId: "any", secretAccessKey: "any" } });
  try {
    for (let r = 0; r < rounds; r++) {
      const plain = await timedAsync(() => listPlain(agentUrl, bucket, set.prefix));
      expectCount("LIST", plain.value, objects);
      s3LoadedMs = Math.min(s3LoadedMs, plain.ms);
      const sdk = await timedAsync(() => listSdk(client, bucket, set.prefix));
      expectCount("the SDK's LIST", sdk.value, objects);
      sdkLoadedMs = Math.min(sdkLoadedMs, sdk.ms);
    }
  } finally {
    client.destroy();
  }
  const mountRoot = join(options.mountRoot, set.prefix);
  const localRoot = join(options.localRoot, set.prefix);
  // Through the mount a stat answers the manifest's size; the local files are empty.
  let manifestBytes = 0;
  for (let i = 0; i < objects; i++) manifestBytes += sizeOf(i);
  const check = (what: string, got: { files: number; bytes: number }, withStat: boolean, bytes: number) => {
    expectCount(what, got.files, objects);
    if (withStat && got.bytes !== bytes) throw new Error(`${what}: stat gave ${got.bytes} bytes in all, not ${bytes}`);
  };
  const walks = (withStat: boolean) => {
    // A job's first walk meets empty kernel caches (no dentries, no cached listings): both
    // sides' first passes come right after a drop of the kernel's caches, where allowed.
    const dropped = dropPageCache();
    const mountFirst = timed(() => walk(mountRoot, withStat));
    check("the first walk of the mount", mountFirst.value, withStat, manifestBytes);
    if (dropped) dropPageCache();
    const localFirst = timed(() => walk(localRoot, withStat));
    check("the first walk of local disk", localFirst.value, withStat, 0);
    const best = { cachesDropped: dropped, mountFirstMs: mountFirst.ms, localFirstMs: localFirst.ms, mountMs: Number.POSITIVE_INFINITY, localMs: Number.POSITIVE_INFINITY };
    for (let r = 0; r < rounds; r++) {
      const local = timed(() => walk(localRoot, withStat));
      check("a walk of local disk", local.value, withStat, 0);
      const mount = timed(() => walk(mountRoot, withStat));
      check("a walk of the mount", mount.value, withStat, manifestBytes);
      best.localMs = Math.min(best.localMs, local.ms);
      best.mountMs = Math.min(best.mountMs, mount.ms);
    }
    return best;
  };
  const walkOnly = walks(false);
  const walkStat = walks(true);
  return { objects, s3FirstMs: first.ms, s3LoadedMs, sdkLoadedMs, walk: walkOnly, walkStat };
}
