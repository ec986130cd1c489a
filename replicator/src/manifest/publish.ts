// Publishes the dataset manifest that node agents load at job start: one gzip NDJSON
// file per dataset prefix, in the shared format (s3/manifest.ts). Here a dataset prefix
// is the DEST prefix of a run: the manifest lists every object under it (written by any
// shard or run), with the source checksums recorded as lineage. It is one PUT, so readers
// see the old or the new file, never a mix. Shards finishing at the same time may race;
// each writer re-lists after writing and rewrites until the manifest matches the bucket.
import { encodeManifest, manifestKey, parseManifest, type ManifestEntry } from "../../../s3/manifest.ts";
import type { Lineage } from "../../../s3/lineage.ts";
import { currentLineage } from "../copy/plan.ts";
import type { IndexEntry } from "../dest/dest-index.ts";
import { listDestination, rangeBounds } from "../dest/ranged-list.ts";
import { putSmallFile, type DestObject, type S3Destination } from "../dest/s3-destination.ts";

export interface PublishResult {
  key: string;
  objects: number;
  written: boolean;
}

export interface PublishInput {
  dest: S3Destination;
  destPrefix: string;
  /** Lineage known per destination key (index files and this run); HEAD fills the gaps. */
  known: Map<string, IndexEntry>;
  /** The destination listing, if it is known to be current (nothing written since). */
  listed?: Map<string, DestObject> | undefined;
  /** Reads lineage for keys that no index describes (HEAD); results join `known`. */
  lookup: (keys: string[]) => Promise<void>;
  /** The manifest's current bytes if already being fetched (undefined: none there). */
  existing?: Promise<Uint8Array | undefined>;
  now?: () => Date;
}

function listAll(dest: S3Destination, prefix: string, known: Map<string, IndexEntry>): Promise<Map<string, DestObject>> {
  return listDestination(dest, prefix, rangeBounds([...known.keys()]));
}

function entriesFor(listed: Map<string, DestObject>, known: Map<string, IndexEntry>): ManifestEntry[] {
  const keys = [...listed.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return keys.map((key) => {
    const o = listed.get(key) as DestObject;
    const lineage: Lineage | undefined = currentLineage(known.get(key), o);
    const entry: ManifestEntry = { key, size: o.size, etag: o.etag, lastModified: o.lastModified };
    if (lineage?.crc32c) entry.crc32c = lineage.crc32c;
    if (lineage?.md5) entry.md5 = lineage.md5;
    return entry;
  });
}

/** Whether `entries` (in the manifest's sorted order) are exactly what entriesFor(listed, known) would give. */
function describesListing(entries: ManifestEntry[], listed: Map<string, DestObject>, known: Map<string, IndexEntry>): boolean {
  if (entries.length !== listed.size) return false;
  let previous: string | undefined;
  for (const e of entries) {
    // Strictly increasing keys, each listed: with equal counts, every listed key appears once.
    if (previous !== undefined && !(previous < e.key)) return false;
    previous = e.key;
    const o = listed.get(e.key);
    if (!o || o.size !== e.size || o.etag !== e.etag || o.lastModified !== e.lastModified) return false;
    const lineage = currentLineage(known.get(e.key), o);
    if (e.crc32c !== (lineage?.crc32c || undefined) || e.md5 !== (lineage?.md5 || undefined)) return false;
  }
  return true;
}

function sameListing(entries: ManifestEntry[], listed: Map<string, DestObject>): boolean {
  return entries.length === listed.size && entries.every((e) => listed.get(e.key)?.etag === e.etag);
}

export async function publishManifest(input: PublishInput): Promise<PublishResult> {
  const key = manifestKey(input.destPrefix);
  let listed = input.listed ?? (await listAll(input.dest, input.destPrefix, input.known));
  const existingBytes = await (input.existing ?? input.dest.getBytes(key));
  let existing: ManifestEntry[] | undefined;
  if (existingBytes) {
    try {
      existing = (await parseManifest(existingBytes)).entries;
    } catch {
      existing = undefined; // A damaged manifest is simply replaced.
    }
  }
  for (let round = 0; ; round++) {
    const unknown: string[] = [];
    for (const o of listed.values()) if (!currentLineage(input.known.get(o.key), o)) unknown.push(o.key);
    if (unknown.length > 0) await input.lookup(unknown);
    // Unchanged is decided without building and sorting 100,000 new entries; describesListing
    // is exactly "existing equals entriesFor(listed, known)".
    if (existing && describesListing(existing, listed, input.known)) return { key, objects: existing.length, written: round > 0 };
    const entries = entriesFor(listed, input.known);
    const bytes = await encodeManifest({ bucket: input.dest.bucket, prefix: input.destPrefix, generatedAt: (input.now ?? (() => new Date()))(), entries });
    await putSmallFile(input.dest, key, bytes, "application/x-ndjson");
    existing = entries;
    // Another shard may have written between our LIST and our PUT: check, and converge.
    const after = await listAll(input.dest, input.destPrefix, input.known);
    if (sameListing(entries, after) || round >= 4) return { key, objects: entries.length, written: true };
    listed = after;
  }
}
