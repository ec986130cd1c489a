// The S3 checksum algorithms (x-amz-checksum-*), incremental and runtime-neutral.
// Invariants: digests are the big-endian bytes S3 base64-encodes on the wire; the CRC
// tables are built once at load and never written again; CRCs run slice-by-8 with 32-bit
// integer arithmetic only (CRC64NVME as two 32-bit halves, no BigInt in the loop).
import { md5, sha1 } from "@noble/hashes/legacy.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { toBase64 } from "./bytes.ts";

export type ChecksumAlgorithm = "CRC32" | "CRC32C" | "CRC64NVME" | "SHA1" | "SHA256" | "MD5";

export const checksumAlgorithms: readonly ChecksumAlgorithm[] = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256", "MD5"];

/** An incremental checksum: update in any split, digest once. */
export interface Hasher {
  update(data: Uint8Array): void;
  /** Big-endian digest bytes; call once, after the last update. */
  digest(): Uint8Array;
}

/**
 * Slice-by-8 tables for a reflected 32-bit CRC: entry [k * 256 + n] is the CRC register
 * after byte n followed by k zero bytes, so eight bytes fold in with eight lookups.
 */
function crc32Tables(reflectedPoly: number): Int32Array {
  const table = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? (c >>> 1) ^ reflectedPoly : c >>> 1;
    table[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = table[n] ?? 0;
    for (let k = 1; k < 8; k++) {
      c = (c >>> 8) ^ (table[c & 0xff] ?? 0);
      table[k * 256 + n] = c;
    }
  }
  return table;
}

const CRC32_TABLE = crc32Tables(0xedb88320);
const CRC32C_TABLE = crc32Tables(0x82f63b78);

/**
 * Reading aligned 32-bit words through an Int32Array view is about 50% faster than
 * assembling them from bytes, but only means "little-endian word" on a little-endian host
 * (every Node and workerd target); elsewhere the byte loops alone run.
 */
const LITTLE_ENDIAN = new Uint8Array(Int32Array.of(1).buffer)[0] === 1;

/** Where the first 4-aligned byte of b is (or its end), and how many whole 8-byte blocks follow. */
function wordSpan(b: Uint8Array): { head: number; words: number } {
  const head = Math.min(b.length, (4 - (b.byteOffset & 3)) & 3);
  return { head, words: LITTLE_ENDIAN ? ((b.length - head) >>> 3) * 2 : 0 };
}

// In the loops below every index is in range by construction, so `?? 0` never fires; it
// satisfies noUncheckedIndexedAccess and measured free in V8.

/** Advances a raw (pre-inverted) CRC32 register over bytes. */
function crc32Update(t: Int32Array, crc: number, b: Uint8Array): number {
  let c = crc | 0;
  const { head, words } = wordSpan(b);
  let i = 0;
  while (i < head) c = (c >>> 8) ^ (t[(c ^ (b[i++] ?? 0)) & 0xff] ?? 0);
  if (words > 0) {
    const w = new Int32Array(b.buffer, b.byteOffset + head, words);
    for (let j = 0; j < words; j += 2) {
      c ^= w[j] ?? 0;
      const h = w[j + 1] ?? 0;
      c =
        (t[1792 + (c & 0xff)] ?? 0) ^
        (t[1536 + ((c >>> 8) & 0xff)] ?? 0) ^
        (t[1280 + ((c >>> 16) & 0xff)] ?? 0) ^
        (t[1024 + (c >>> 24)] ?? 0) ^
        (t[768 + (h & 0xff)] ?? 0) ^
        (t[512 + ((h >>> 8) & 0xff)] ?? 0) ^
        (t[256 + ((h >>> 16) & 0xff)] ?? 0) ^
        (t[h >>> 24] ?? 0);
    }
    i += words * 4;
  }
  while (i < b.length) c = (c >>> 8) ^ (t[(c ^ (b[i++] ?? 0)) & 0xff] ?? 0);
  return c;
}

/** CRC64NVME tables, slice-by-8, split into low and high 32-bit halves. */
function crc64Tables(polyLo: number, polyHi: number): { lo: Int32Array; hi: Int32Array } {
  const lo = new Int32Array(8 * 256);
  const hi = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let l = n;
    let h = 0;
    for (let bit = 0; bit < 8; bit++) {
      const carry = l & 1;
      l = (l >>> 1) | (h << 31);
      h = h >>> 1;
      if (carry) {
        l ^= polyLo;
        h ^= polyHi;
      }
    }
    lo[n] = l;
    hi[n] = h;
  }
  for (let n = 0; n < 256; n++) {
    let l = lo[n] ?? 0;
    let h = hi[n] ?? 0;
    for (let k = 1; k < 8; k++) {
      const idx = l & 0xff;
      l = ((l >>> 8) | (h << 24)) ^ (lo[idx] ?? 0);
      h = (h >>> 8) ^ (hi[idx] ?? 0);
      lo[k * 256 + n] = l;
      hi[k * 256 + n] = h;
    }
  }
  return { lo, hi };
}

const CRC64NVME_TABLES = crc64Tables(0xac4bc9b5 | 0, 0x9a6c9329 | 0);

/** Advances a raw (pre-inverted) CRC64NVME register held as [lo, hi] in place. */
function crc64Update(state: Int32Array, b: Uint8Array): void {
  const tl = CRC64NVME_TABLES.lo;
  const th = CRC64NVME_TABLES.hi;
  let l = state[0] ?? 0;
  let h = state[1] ?? 0;
  const byteStep = (byte: number): void => {
    const idx = (l ^ byte) & 0xff;
    l = ((l >>> 8) | (h << 24)) ^ (tl[idx] ?? 0);
    h = (h >>> 8) ^ (th[idx] ?? 0);
  };
  const { head, words } = wordSpan(b);
  let i = 0;
  while (i < head) byteStep(b[i++] ?? 0);
  if (words > 0) {
    const w = new Int32Array(b.buffer, b.byteOffset + head, words);
    for (let j = 0; j < words; j += 2) {
      l ^= w[j] ?? 0;
      h ^= w[j + 1] ?? 0;
      const a0 = 1792 + (l & 0xff);
      const a1 = 1536 + ((l >>> 8) & 0xff);
      const a2 = 1280 + ((l >>> 16) & 0xff);
      const a3 = 1024 + (l >>> 24);
      const a4 = 768 + (h & 0xff);
      const a5 = 512 + ((h >>> 8) & 0xff);
      const a6 = 256 + ((h >>> 16) & 0xff);
      const a7 = h >>> 24;
      l = (tl[a0] ?? 0) ^ (tl[a1] ?? 0) ^ (tl[a2] ?? 0) ^ (tl[a3] ?? 0) ^ (tl[a4] ?? 0) ^ (tl[a5] ?? 0) ^ (tl[a6] ?? 0) ^ (tl[a7] ?? 0);
      h = (th[a0] ?? 0) ^ (th[a1] ?? 0) ^ (th[a2] ?? 0) ^ (th[a3] ?? 0) ^ (th[a4] ?? 0) ^ (th[a5] ?? 0) ^ (th[a6] ?? 0) ^ (th[a7] ?? 0);
    }
    i += words * 4;
  }
  while (i < b.length) byteStep(b[i++] ?? 0);
  state[0] = l;
  state[1] = h;
}

function writeUint32BE(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value >>> 24;
  out[offset + 1] = value >>> 16;
  out[offset + 2] = value >>> 8;
  out[offset + 3] = value;
}

function crc32Hasher(table: Int32Array): Hasher {
  let crc = ~0;
  return {
    update(data) {
      crc = crc32Update(table, crc, data);
    },
    digest() {
      const out = new Uint8Array(4);
      writeUint32BE(out, 0, ~crc);
      return out;
    },
  };
}

function crc64nvmeHasher(): Hasher {
  const state = Int32Array.of(~0, ~0);
  return {
    update(data) {
      crc64Update(state, data);
    },
    digest() {
      const out = new Uint8Array(8);
      writeUint32BE(out, 0, ~(state[1] ?? 0));
      writeUint32BE(out, 4, ~(state[0] ?? 0));
      return out;
    },
  };
}

/** A fresh incremental hasher for one S3 checksum algorithm. */
export function createHasher(algorithm: ChecksumAlgorithm): Hasher {
  switch (algorithm) {
    case "CRC32":
      return crc32Hasher(CRC32_TABLE);
    case "CRC32C":
      return crc32Hasher(CRC32C_TABLE);
    case "CRC64NVME":
      return crc64nvmeHasher();
    case "SHA1":
      return sha1.create();
    case "SHA256":
      return sha256.create();
    case "MD5":
      return md5.create();
  }
}

/** CRC32 (zlib/gzip) as an unsigned number; pass a previous result to continue it. */
export function crc32(bytes: Uint8Array, previous = 0): number {
  return ~crc32Update(CRC32_TABLE, ~previous, bytes) >>> 0;
}

/** CRC32C (Castagnoli) as an unsigned number; pass a previous result to continue it. */
export function crc32c(bytes: Uint8Array, previous = 0): number {
  return ~crc32Update(CRC32C_TABLE, ~previous, bytes) >>> 0;
}

/** The one-shot digest of bytes. */
export function checksum(algorithm: ChecksumAlgorithm, bytes: Uint8Array): Uint8Array {
  const hasher = createHasher(algorithm);
  hasher.update(bytes);
  return hasher.digest();
}

/** The one-shot digest in the base64 form of the x-amz-checksum-* headers. */
export function checksumBase64(algorithm: ChecksumAlgorithm, bytes: Uint8Array): string {
  return toBase64(checksum(algorithm, bytes));
}

/** The request/response header carrying this algorithm's value, lower-cased. */
export function checksumHeaderName(algorithm: ChecksumAlgorithm): string {
  return `x-amz-checksum-${algorithm.toLowerCase()}`;
}

/** Digest length in bytes, e.g. to validate a decoded header value. */
export function checksumLengthBytes(algorithm: ChecksumAlgorithm): number {
  const lengths = { CRC32: 4, CRC32C: 4, CRC64NVME: 8, SHA1: 20, SHA256: 32, MD5: 16 } as const;
  return lengths[algorithm];
}

/**
 * Parses an algorithm name as sent in x-amz-sdk-checksum-algorithm or
 * x-amz-checksum-algorithm, case-insensitively; undefined when not one S3 knows.
 */
export function parseChecksumAlgorithm(name: string): ChecksumAlgorithm | undefined {
  const upper = name.trim().toUpperCase();
  return checksumAlgorithms.find((algorithm) => algorithm === upper);
}

/** The algorithm whose value a header (e.g. "X-Amz-Checksum-CRC32") carries, if any. */
export function checksumAlgorithmFromHeader(headerName: string): ChecksumAlgorithm | undefined {
  const lower = headerName.trim().toLowerCase();
  const prefix = "x-amz-checksum-";
  if (!lower.startsWith(prefix)) return undefined;
  // "x-amz-checksum-algorithm" and "-type" name no value; the list lookup rejects them.
  return parseChecksumAlgorithm(lower.slice(prefix.length));
}
