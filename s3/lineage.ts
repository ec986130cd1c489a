// Names of the user-metadata fields the replicator records on every copy and agents read
// back to verify the same bytes end to end (source checksum → R2 → NVMe → reader).
// On the wire they are x-amz-meta-<name>; R2 keeps them as customMetadata.

/** Where the object came from, e.g. gs://bucket/path. */
export const META_SOURCE = "ferry-source";
/** The source's version: a GCS generation, an S3 ETag, or a file's size+mtime. */
export const META_SOURCE_VERSION = "ferry-source-version";
/** The source's size in bytes. */
export const META_SOURCE_SIZE = "ferry-source-size";
/** Base64 CRC32C of the whole object, as GCS reports it. */
export const META_CRC32C = "ferry-crc32c";
/** Base64 MD5 of the whole object, when the source has one (not for composite objects). */
export const META_MD5 = "ferry-md5";

export interface Lineage {
  source?: string;
  sourceVersion?: string;
  sourceSize?: number;
  crc32c?: string;
  md5?: string;
}

/** Reads lineage from user metadata (keys without the x-amz-meta- prefix, any case). */
export function lineageFromMetadata(metadata: Record<string, string | undefined>): Lineage {
  const get = (name: string) => metadata[name] ?? metadata[name.toLowerCase()];
  const size = get(META_SOURCE_SIZE);
  const lineage: Lineage = {};
  const source = get(META_SOURCE);
  if (source) lineage.source = source;
  const version = get(META_SOURCE_VERSION);
  if (version) lineage.sourceVersion = version;
  if (size !== undefined && /^\d+$/.test(size)) lineage.sourceSize = Number(size);
  const crc32c = get(META_CRC32C);
  if (crc32c) lineage.crc32c = crc32c;
  const md5 = get(META_MD5);
  if (md5) lineage.md5 = md5;
  return lineage;
}

export function lineageToMetadata(lineage: Lineage): Record<string, string> {
  const out: Record<string, string> = {};
  if (lineage.source) out[META_SOURCE] = lineage.source;
  if (lineage.sourceVersion) out[META_SOURCE_VERSION] = lineage.sourceVersion;
  if (lineage.sourceSize !== undefined) out[META_SOURCE_SIZE] = String(lineage.sourceSize);
  if (lineage.crc32c) out[META_CRC32C] = lineage.crc32c;
  if (lineage.md5) out[META_MD5] = lineage.md5;
  return out;
}
