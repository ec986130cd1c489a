// Options of the disk block cache, their defaults, and their validation (once, at open).
// Invariant: a DiskBlockCache only ever sees a frozen, validated CacheConfig.

/** Structured logger: a constant message and the variables as fields. */
export interface CacheLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/**
 * Default block size: 4 MiB, from bench/agent-cache.ts on this (shared, 2-vCPU) machine:
 * - A get costs a fixed ~0.1-0.2 ms (open, read, close: three thread-pool hops, plus two
 *   SHA-256 of the identity) on top of copying and CRC-checking the bytes (~1.5-1.9 GiB/s
 *   page-cached for 4 MiB blocks). At 1 MiB that fixed part is ~15-25% of a get, at 4 MiB
 *   ~5%; at 8-16 MiB throughput was no better, within the noise.
 * - A miss fetches a whole block: 4 MiB from R2 is about one round trip plus ~30 ms at
 *   1 Gbit/s, so a random 64 KiB HDF5 chunk read costs little more than at 1 MiB, while a
 *   sequential reader needs 4x fewer requests. It is also the S3 SDKs' and
 *   s3torchconnector's part size and JuiceFS's block size (Mountpoint uses 1 MiB).
 * - Index and scan: 1,000,000 blocks of 4 MiB (4 TiB of cache) is ~65 MB of index.
 */
export const DEFAULT_BLOCK_SIZE_BYTES = 4 * 1024 * 1024;
export const MAX_BLOCK_SIZE_BYTES = 1024 * 1024 * 1024;

export interface DiskBlockCacheOptions {
  /** Cache directory (created if missing). Blocks go to `<dir>/blocks-v2/` (the format version), pins to `<dir>/pins-v1/`. One agent per dir. */
  dir: string;
  /** Block size in bytes; a block holds bytes [index × size, (index + 1) × size) of an object. Default 4 MiB, at most 1 GiB. */
  blockSizeBytes?: number;
  /** Most bytes of block files (headers included) the cache keeps on disk. */
  quotaBytes: number;
  /** Keep at least this fraction of the filesystem free (checked with statfs at most once a second). Default 0.05. */
  minFreeRatio?: number;
  /** Background eviction starts above this fraction of the effective limit (min of quota and free-space bound). Default 0.95. */
  highWatermark?: number;
  /** ...and stops at this fraction. Default 0.85. */
  lowWatermark?: number;
  /** Blocks older than this (since written) are misses and are removed. Default: no TTL. */
  ttlSeconds?: number;
  /** Default: silent. */
  logger?: CacheLogger;
  /** Clock in milliseconds since the epoch. Default Date.now; tests pass their own. */
  now?: () => number;
}

export interface CacheConfig {
  readonly dir: string;
  readonly blockSizeBytes: number;
  readonly quotaBytes: number;
  readonly minFreeRatio: number;
  readonly highWatermark: number;
  readonly lowWatermark: number;
  readonly ttlSeconds: number | undefined;
  readonly logger: CacheLogger;
  readonly now: () => number;
}

const silent: CacheLogger = { info() {}, warn() {}, error() {} };

function ratio(name: string, v: number): number {
  if (!Number.isFinite(v) || v < 0 || v > 1) throw new RangeError(`invalid cache option: ${name} must be a ratio in [0, 1], got ${v}`);
  return v;
}

/** Validates and freezes options; throws RangeError naming the option. */
export function cacheConfig(o: DiskBlockCacheOptions): CacheConfig {
  if (typeof o.dir !== "string" || o.dir === "") throw new RangeError("invalid cache option: dir must be a non-empty path");
  const blockSizeBytes = o.blockSizeBytes ?? DEFAULT_BLOCK_SIZE_BYTES;
  if (!Number.isSafeInteger(blockSizeBytes) || blockSizeBytes < 1 || blockSizeBytes > MAX_BLOCK_SIZE_BYTES) {
    throw new RangeError(`invalid cache option: blockSizeBytes must be an integer in [1, ${MAX_BLOCK_SIZE_BYTES}], got ${blockSizeBytes}`);
  }
  if (!Number.isSafeInteger(o.quotaBytes) || o.quotaBytes < 1) {
    throw new RangeError(`invalid cache option: quotaBytes must be a positive integer, got ${o.quotaBytes}`);
  }
  const highWatermark = ratio("highWatermark", o.highWatermark ?? 0.95);
  const lowWatermark = ratio("lowWatermark", o.lowWatermark ?? 0.85);
  if (lowWatermark > highWatermark) throw new RangeError(`invalid cache option: lowWatermark (${lowWatermark}) must not exceed highWatermark (${highWatermark})`);
  const ttlSeconds = o.ttlSeconds;
  if (ttlSeconds !== undefined && (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0)) {
    throw new RangeError(`invalid cache option: ttlSeconds must be positive, got ${ttlSeconds}`);
  }
  return Object.freeze({
    dir: o.dir,
    blockSizeBytes,
    quotaBytes: o.quotaBytes,
    minFreeRatio: ratio("minFreeRatio", o.minFreeRatio ?? 0.05),
    highWatermark,
    lowWatermark,
    ttlSeconds,
    logger: o.logger ?? silent,
    now: o.now ?? Date.now,
  });
}
