// `--shard i/N`: a stable hash split of the source keys, so N hosts (an indexed Job, a
// Slurm array) share one source with no coordination. The hash is CRC32C of the key
// relative to the source prefix: the same key lands in the same shard on every host,
// every run and every platform.
import { crc32c } from "../../../s3/checksums.ts";
import { utf8 } from "../../../s3/bytes.ts";
import { ConfigError } from "../errors.ts";

export interface Shard {
  /** 0-based. */
  index: number;
  count: number;
}

export const WHOLE: Shard = Object.freeze({ index: 0, count: 1 });

export function parseShard(text: string | undefined): Shard {
  if (text === undefined) return WHOLE;
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || !(count >= 1 && count <= 100_000) || !(index >= 0 && index < count)) {
    throw new ConfigError("--shard", `--shard must be i/N with 0 <= i < N (e.g. 0/3 for the first of three hosts), got "${text}"`);
  }
  return Object.freeze({ index, count });
}

export function shardOf(relativeKey: string, count: number): number {
  return count === 1 ? 0 : crc32c(utf8(relativeKey)) % count;
}

export function inShard(relativeKey: string, shard: Shard): boolean {
  return shardOf(relativeKey, shard.count) === shard.index;
}
