// What the replicator knows about the destination objects it wrote: each one's ETag,
// size and lineage (source URL, version, checksums), kept as one gzip NDJSON file per
// shard under .ferry/replicator/<dest prefix>. It lets a rerun decide from one LIST,
// with no HEAD per object. An entry counts only while the listed ETag and size still
// match it, so an object rewritten by anyone else is re-read (HEAD), never trusted.
// Each shard writes only its own file: parallel shards never race on one key.
import { promisify } from "node:util";
import { gunzip, gzip } from "node:zlib";
import { RESERVED_PREFIX } from "../../../s3/manifest.ts";
import type { Lineage } from "../../../s3/lineage.ts";
import type { Shard } from "../copy/shard.ts";
import { putSmallFile, type DestObject, type S3Destination } from "./s3-destination.ts";

export const INDEX_FORMAT = "ferry-replicator-index";
export const INDEX_VERSION = 1;

export interface IndexEntry extends Lineage {
  key: string;
  etag: string;
  size: number;
}

export function indexFolder(destPrefix: string): string {
  return `${RESERVED_PREFIX}replicator/${destPrefix}`;
}

export function indexKey(destPrefix: string, shard: Shard): string {
  return `${indexFolder(destPrefix)}index-${shard.index}-of-${shard.count}.ndjson.gz`;
}

// node:zlib, not CompressionStream: on a 100,000-object index (27 MB of NDJSON) the web
// streams took most of a second each way; zlib works off the main thread.
const gunzipAsync = promisify(gunzip);
const gzipAsync = promisify(gzip);

async function gunzipText(bytes: Uint8Array): Promise<string> {
  return (await gunzipAsync(bytes)).toString("utf8");
}

async function gzipText(text: string): Promise<Uint8Array> {
  return gzipAsync(Buffer.from(text, "utf8"), { level: 6 });
}

export function encodeIndexText(destPrefix: string, shard: Shard, entries: IndexEntry[]): string {
  const header = { format: INDEX_FORMAT, version: INDEX_VERSION, prefix: destPrefix, shard: `${shard.index}/${shard.count}`, objects: entries.length };
  return [JSON.stringify(header), ...entries.map((e) => JSON.stringify(e))].join("\n") + "\n";
}

/** Parses one index file; a damaged or foreign file yields no entries (they are re-read by HEAD). */
export async function decodeIndex(bytes: Uint8Array): Promise<IndexEntry[]> {
  try {
    const lines = (await gunzipText(bytes)).split("\n").filter(Boolean);
    const header = JSON.parse(lines[0] ?? "{}") as { format?: string; version?: number; objects?: number };
    if (header.format !== INDEX_FORMAT || header.version !== INDEX_VERSION || header.objects !== lines.length - 1) return [];
    return lines.slice(1).map((line) => JSON.parse(line) as IndexEntry);
  } catch {
    // Unreadable: treated as empty on purpose; the cost is a HEAD per object, once.
    return [];
  }
}

/** Every shard's index for the prefix, merged (the newest file wins on a conflict), and each file's own entries. */
export async function readIndexes(dest: S3Destination, destPrefix: string): Promise<{ entries: Map<string, IndexEntry>; files: Map<string, IndexEntry[]> }> {
  const folder = indexFolder(destPrefix);
  const listed: DestObject[] = [];
  for await (const o of dest.list(folder, { delimiter: "/" })) if (/\/index-\d+-of-\d+\.ndjson\.gz$/.test(o.key)) listed.push(o);
  listed.sort((a, b) => a.lastModified.localeCompare(b.lastModified));
  const files = new Map<string, IndexEntry[]>();
  const entries = new Map<string, IndexEntry>();
  for (const o of listed) {
    const bytes = await dest.getBytes(o.key);
    if (!bytes) continue;
    const decoded = await decodeIndex(bytes);
    files.set(o.key, decoded);
    for (const e of decoded) entries.set(e.key, e);
  }
  return { entries, files };
}

/** Same fields, same values; a field set to undefined counts as absent (as JSON writes it). */
function sameEntry(a: IndexEntry, b: IndexEntry | undefined): boolean {
  if (b === undefined) return false;
  const x = a as unknown as Record<string, unknown>;
  const y = b as unknown as Record<string, unknown>;
  for (const k in x) if (x[k] !== y[k]) return false;
  for (const k in y) if (x[k] !== y[k]) return false;
  return true;
}

/**
 * Writes this shard's index unless its entries equal the ones its file holds now (`previous`,
 * as readIndexes decoded them). Compared as entries, not as encoded text: a no-op run over
 * 100,000 objects then encodes and compresses nothing. Returns whether it wrote.
 */
export async function writeIndex(dest: S3Destination, destPrefix: string, shard: Shard, entries: IndexEntry[], previous: IndexEntry[] | undefined): Promise<boolean> {
  const sorted = [...entries].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  if (previous && previous.length === sorted.length && sorted.every((e, i) => sameEntry(e, previous[i]))) return false;
  await putSmallFile(dest, indexKey(destPrefix, shard), await gzipText(encodeIndexText(destPrefix, shard, sorted)), "application/x-ndjson");
  return true;
}
