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

/** Keys sampled to place the bounds: sorting a sample, not all 100,000 keys, is enough to even out ranges. */
const SAMPLE = 4_096;

/** Up to MAX_RANGES - 1 increasing bounds taken at even steps through `keys` (any order). */
export function rangeBounds(keys: readonly string[]): string[] {
  const ranges = Math.min(MAX_RANGES, Math.floor(keys.length / KEYS_PER_RANGE));
  if (ranges < 2) return [];
  const step = Math.max(1, Math.floor(keys.length / SAMPLE));
  const sample: string[] = [];
  for (let i = 0; i < keys.length; i += step) sample.push(keys[i] ?? "");
  sample.sort(compareKeys);
  const picks = Array.from({ length: ranges - 1 }, (_, i) => sample[Math.floor(((i + 1) * sample.length) / ranges)] ?? "");
  return picks.filter((key, i) => key !== "" && (i === 0 || compareKeys(key, picks[i - 1] ?? "") > 0));
}

async function listRange(dest: S3Destination, prefix: string, after: string | undefined, upTo: string | undefined, into: Map<string, DestObject>, signal?: AbortSignal): Promise<void> {
  for await (const o of dest.list(prefix, { ...(after === undefined ? {} : { startAfter: after }), ...(signal ? { signal } : {}) })) {
    if (upTo !== undefined && compareKeys(o.key, upTo) > 0) return;
    into.set(o.key, o);
  }
}

/**
 * Everything under `prefix`, listed as ranges split at `bounds` (from rangeBounds), all at once.
 * Bounds may still be on their way (they come from an index being read): the first range
 * starts at once and the others when the bounds arrive, so reading the index costs no wall
 * time; bounds the first range has already passed by then are dropped (it goes on to the next).
 */
export async function listDestination(dest: S3Destination, prefix: string, bounds: readonly string[] | Promise<readonly string[]>, signal?: AbortSignal): Promise<Map<string, DestObject>> {
  const listed = new Map<string, DestObject>();
  let stopAt: string | undefined;
  let lastSeen: string | undefined;
  let firstDone = false;
  const first = (async () => {
    for await (const o of dest.list(prefix, signal ? { signal } : {})) {
      if (stopAt !== undefined && compareKeys(o.key, stopAt) > 0) break;
      listed.set(o.key, o);
      lastSeen = o.key;
    }
    firstDone = true;
  })();
  // If the first range fails, the others are not waited for (its error decides).
  first.catch(() => undefined);
  const rest = Promise.resolve(bounds).then(async (known) => {
    if (firstDone) return;
    const ahead = known.filter((key) => lastSeen === undefined || compareKeys(key, lastSeen) > 0);
    if (ahead.length === 0) return;
    stopAt = ahead[0];
    await Promise.all(ahead.map((after, i) => listRange(dest, prefix, after, ahead[i + 1], listed, signal)));
  });
  await Promise.all([first, rest]);
  return listed;
}
