// Deciding what to copy, skip and delete: pure functions over the source listing, the
// destination listing and what is known of each destination object's lineage.
// An object is unchanged when the destination records the same source URL, version and
// size; or, when the version differs, the same size and the same source checksums (a
// rewrite with identical bytes, e.g. a re-run pipeline, costs no egress). Nothing is
// ever judged by size alone.
import { unquoteEtag } from "../../../s3/conditionals.ts";
import { RESERVED_PREFIX } from "../../../s3/manifest.ts";
import type { Lineage } from "../../../s3/lineage.ts";
import type { DestObject } from "../dest/s3-destination.ts";
import type { IndexEntry } from "../dest/dest-index.ts";
import type { SourceObject } from "../sources/source.ts";
import { inShard, type Shard } from "./shard.ts";

export type Decision = "new" | "changed" | "unchanged" | "same-content";

export interface PlannedCopy {
  object: SourceObject;
  destKey: string;
  reason: "new" | "changed";
}

export interface Plan {
  copies: PlannedCopy[];
  unchanged: number;
  sameContent: number;
  /** Destination keys (this shard's) with no source object; deleted only with --delete. */
  extra: string[];
  /** Source keys that cannot be written (reserved key space), reported as failures. */
  rejected: Array<{ object: SourceObject; reason: string }>;
}

/** A lineage record still describes the listed destination object only if ETag and size match. */
export function currentLineage(entry: IndexEntry | undefined, listed: DestObject | undefined): Lineage | undefined {
  if (!entry || !listed || unquoteEtag(entry.etag) !== unquoteEtag(listed.etag) || entry.size !== listed.size) return undefined;
  return entry;
}

export function decide(object: SourceObject, listed: DestObject | undefined, lineage: Lineage | undefined): Decision {
  if (!listed) return "new";
  if (!lineage || listed.size !== object.size) return "changed";
  if (lineage.source === object.url && lineage.sourceVersion === object.version && lineage.sourceSize === object.size) return "unchanged";
  const crcComparable = Boolean(object.crc32c && lineage.crc32c);
  const md5Comparable = Boolean(object.md5 && lineage.md5);
  if (!crcComparable && !md5Comparable) return "changed";
  if (crcComparable && object.crc32c !== lineage.crc32c) return "changed";
  if (md5Comparable && object.md5 !== lineage.md5) return "changed";
  return "same-content";
}

export function destKeyOf(destPrefix: string, object: SourceObject): string {
  return destPrefix + object.key;
}

/** Destination keys whose lineage must be read by HEAD before deciding (not in any index). */
export function keysNeedingLineage(sources: SourceObject[], destPrefix: string, listed: Map<string, DestObject>, known: Map<string, IndexEntry>): string[] {
  const keys: string[] = [];
  for (const object of sources) {
    const key = destKeyOf(destPrefix, object);
    const d = listed.get(key);
    if (d && d.size === object.size && !currentLineage(known.get(key), d)) keys.push(key);
  }
  return keys;
}

export function plan(input: { sources: SourceObject[]; destPrefix: string; shard: Shard; listed: Map<string, DestObject>; known: Map<string, IndexEntry> }): Plan {
  const result: Plan = { copies: [], unchanged: 0, sameContent: 0, extra: [], rejected: [] };
  // Listed keys some source object maps to; when every listed key is one, there are no
  // extras and the 100,000-key pass that would look for them is skipped.
  let matched = 0;
  const wanted: string[] = [];
  for (const object of input.sources) {
    const destKey = destKeyOf(input.destPrefix, object);
    if (destKey.startsWith(RESERVED_PREFIX)) {
      result.rejected.push({ object, reason: `would land in the reserved "${RESERVED_PREFIX}" key space` });
      continue;
    }
    wanted.push(destKey);
    const listed = input.listed.get(destKey);
    if (listed) matched++;
    const decision = decide(object, listed, currentLineage(input.known.get(destKey), listed));
    if (decision === "unchanged") result.unchanged++;
    else if (decision === "same-content") result.sameContent++;
    else result.copies.push({ object, destKey, reason: decision });
  }
  if (matched < input.listed.size) {
    const sought = new Set(wanted);
    for (const key of input.listed.keys()) {
      if (!key.startsWith(input.destPrefix) || sought.has(key)) continue;
      if (inShard(key.slice(input.destPrefix.length), input.shard)) result.extra.push(key);
    }
  }
  result.extra.sort();
  return result;
}
