// Dataset manifests: one gzip NDJSON object per dataset prefix, under the bucket's reserved
// key space, so an agent answers LIST/HEAD for 100k objects after one GET. The first line
// is a header; every other line is one object. Web APIs only (CompressionStream).
import { concatBytes } from "./bytes.ts";

/** Reserved key space: nothing but Ferry's own files lives under it. */
export const RESERVED_PREFIX = ".ferry/";
export const MANIFEST_FORMAT = "ferry-manifest";
export const MANIFEST_VERSION = 1;

export interface ManifestHeader {
  format: typeof MANIFEST_FORMAT;
  version: number;
  bucket: string;
  /** The dataset prefix, "" or ending in "/". */
  prefix: string;
  generatedAt: string;
  objects: number;
}

export interface ManifestEntry {
  key: string;
  size: number;
  /** Quoted ETag as S3 returns it. */
  etag: string;
  lastModified: string;
  /** Base64 CRC32C of the whole object, when known. */
  crc32c?: string;
  /** Base64 MD5 of the whole object, when known. */
  md5?: string;
}

export interface Manifest {
  header: ManifestHeader;
  entries: ManifestEntry[];
}

export class ManifestFormatError extends Error {
  override readonly name = "ManifestFormatError";
}

/** The manifest's key for a dataset prefix ("" or ending in "/"). */
export function manifestKey(prefix: string): string {
  if (prefix !== "" && !prefix.endsWith("/")) throw new ManifestFormatError(`a dataset prefix must be "" or end in "/": ${prefix}`);
  return `${RESERVED_PREFIX}manifests/${prefix}manifest.ndjson.gz`;
}

/** The dataset prefix a manifest key describes, or undefined when `key` is not a manifest key. */
export function manifestPrefixOf(key: string): string | undefined {
  const head = `${RESERVED_PREFIX}manifests/`;
  const tail = "manifest.ndjson.gz";
  if (!key.startsWith(head) || !key.endsWith(tail)) return undefined;
  const prefix = key.slice(head.length, key.length - tail.length);
  return prefix === "" || prefix.endsWith("/") ? prefix : undefined;
}

/** The manifest keys that could describe `prefix`, nearest first (its own, then its parents'). */
export function candidateManifestKeys(prefix: string): string[] {
  const dir = prefix.slice(0, prefix.lastIndexOf("/") + 1);
  const parts = dir.split("/").filter(Boolean);
  const keys: string[] = [];
  for (let n = parts.length; n >= 0; n--) keys.push(manifestKey(parts.slice(0, n).map((p) => `${p}/`).join("")));
  return keys;
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
  }
  return concatBytes(...chunks);
}

/** Entries must be sorted by key (S3 order); the encoder checks it. */
export async function encodeManifest(input: { bucket: string; prefix: string; generatedAt?: Date; entries: ManifestEntry[] }): Promise<Uint8Array> {
  for (let i = 1; i < input.entries.length; i++) {
    if ((input.entries[i - 1]?.key ?? "") >= (input.entries[i]?.key ?? "")) throw new ManifestFormatError("manifest entries must be sorted by key, without duplicates");
  }
  const header: ManifestHeader = {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    bucket: input.bucket,
    prefix: input.prefix,
    generatedAt: (input.generatedAt ?? new Date()).toISOString(),
    objects: input.entries.length,
  };
  const text = [JSON.stringify(header), ...input.entries.map((e) => JSON.stringify(e))].join("\n") + "\n";
  const gzip = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return collect(gzip);
}

function checkEntry(value: unknown, line: number): ManifestEntry {
  const e = value as Partial<ManifestEntry> | null;
  if (!e || typeof e.key !== "string" || typeof e.size !== "number" || !Number.isInteger(e.size) || e.size < 0 || typeof e.etag !== "string" || typeof e.lastModified !== "string") {
    throw new ManifestFormatError(`manifest line ${line}: an entry needs key, size, etag and lastModified`);
  }
  return e as ManifestEntry;
}

export async function parseManifest(gzipped: Uint8Array): Promise<Manifest> {
  let text: string;
  try {
    const bytes = await collect(new Blob([gzipped as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream("gzip")));
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch (error) {
    throw new ManifestFormatError(`manifest is not gzip-compressed UTF-8: ${error instanceof Error ? error.message : String(error)}`);
  }
  const lines = text.split("\n").filter((line) => line !== "");
  let header: ManifestHeader;
  try {
    header = JSON.parse(lines[0] ?? "") as ManifestHeader;
  } catch {
    throw new ManifestFormatError("manifest header is not JSON");
  }
  if (header.format !== MANIFEST_FORMAT || header.version !== MANIFEST_VERSION) {
    throw new ManifestFormatError(`not a ${MANIFEST_FORMAT} v${MANIFEST_VERSION} (format ${String(header.format)}, version ${String(header.version)})`);
  }
  const entries = lines.slice(1).map((line, i) => {
    try {
      return checkEntry(JSON.parse(line), i + 2);
    } catch (error) {
      if (error instanceof ManifestFormatError) throw error;
      throw new ManifestFormatError(`manifest line ${i + 2} is not JSON`);
    }
  });
  if (entries.length !== header.objects) throw new ManifestFormatError(`manifest lists ${entries.length} objects, its header says ${header.objects}: truncated?`);
  return { header, entries };
}
