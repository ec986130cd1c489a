// The whole-object checksums computed while bytes stream past: CRC32C from the shared S3
// core, and MD5 from Node's native crypto. (The core's MD5 is portable JavaScript at
// about 80 MiB/s here; OpenSSL's runs at about 650 MiB/s, and the replicator is Node-only.)
import { createHash } from "node:crypto";
import { createHasher } from "../../../s3/checksums.ts";
import { toBase64 } from "../../../s3/bytes.ts";
import type { Checksums } from "../sources/source.ts";

export interface Hashes {
  update(data: Uint8Array): void;
  /** Base64 digests; call once. */
  digest(): Required<Checksums>;
}

export function createHashes(): Hashes {
  const crc = createHasher("CRC32C");
  const md5 = createHash("md5");
  return {
    update(data) {
      crc.update(data);
      md5.update(data);
    },
    digest() {
      return { crc32c: toBase64(crc.digest()), md5: md5.digest("base64") };
    },
  };
}

/** Base64 CRC32C of one buffer (a part's x-amz-checksum-crc32c). */
export function crc32cBase64(data: Uint8Array): string {
  const h = createHasher("CRC32C");
  h.update(data);
  return toBase64(h.digest());
}

export type Verification = "source-checksum" | "no-source-checksum";

/**
 * Compares what was read with what the source declares. Returns how the object was
 * verified, or the first mismatching algorithm. Never falls back to size alone: an
 * object without a source checksum is "no-source-checksum" and reported as such.
 */
export function compareChecksums(declared: Checksums, computed: Required<Checksums>): { ok: true; verification: Verification } | { ok: false; algorithm: string; expected: string; actual: string } {
  if (declared.crc32c && declared.crc32c !== computed.crc32c) return { ok: false, algorithm: "CRC32C", expected: declared.crc32c, actual: computed.crc32c };
  if (declared.md5 && declared.md5 !== computed.md5) return { ok: false, algorithm: "MD5", expected: declared.md5, actual: computed.md5 };
  return { ok: true, verification: declared.crc32c || declared.md5 ? "source-checksum" : "no-source-checksum" };
}
