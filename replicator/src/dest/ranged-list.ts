// Lists a large destination prefix as several key ranges at once. One LIST page is 1,000
// keys and pages of one listing come one after another, so 100,000 objects cost 100
// round trips in a row; split at keys the source already named, N ranges take 1/N as long.
// Ranges are (bound[i-1], bound[i]] in S3's order (UTF-8 bytes): together they cover the
// prefix exactly, whatever the destination holds, so the result equals one plain LIST.
import type { DestObject, S3Destination } from "./s3-destination.ts";

/** Keys per range below which splitting does not pay; and the most ranges at once. */
export const KEYS_PER_RANGE = 5_000;
export const MAX_RANGES = 8;

/** S3 (and R2) list in UTF-8 byte order; JavaScript compares UTF-16 units, which differs above U+FFFF. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** Up to MAX_RANGES - 1 increasing bounds taken at even steps through `keys` (any order). */
export function rangeBounds(keys: readonly string[]): string[] {
  const ranges = Math.min(MAX_RANGES, Math.floor(keys.length / KEYS_PER_RANGE));
  if (ranges < 2) return [];
  const sorted = [...keys].sort();
  const picks = Array.from({ length: ranges - 1 }, (_, i) => sorted[Math.floor(((i + 1) * sorted.length) / ranges)] ?? "");
  picks.sort(compareKeys);
  return picks.filter((key, i) => key !== "" && (i === 0 || compareKeys(key, picks[i - 1] ?? "") > 0));
}

async function listRange(dest: S3Destination, prefix: string, after: string | undefined, upTo: string | undefined, into: Map<string, DestObject>, signal?: AbortSignal): Promise<void> {
  for await (const o of dest.list(prefix, { ...(after === undefined ? {} : { startAfter: after }), ...(signal ? { signal } : {}) })) {
    if (upTo !== undefined && compareKeys(o.key, upTo) > 0) return;
    into.set(o.key, o);
  }
}

/** Everything under `prefix`, listed as ranges split at `bounds` (from rangeBounds), all at once. */
export async function listDestination(dest: S3Destination, prefix: string, bounds: readonly string[], signal?: AbortSignal): Promise<Map<string, DestObject>> {
  const parts = Array.from({ length: bounds.length + 1 }, () => new Map<string, DestObject>());
  await Promise.all(parts.map((into, i) => listRange(dest, prefix, bounds[i - 1], bounds[i], into, signal)));
  const listed = new Map<string, DestObject>();
  for (const part of parts) for (const [key, o] of part) listed.set(key, o);
  return listed;
}
