// A loaded dataset manifest as an in-memory index: HEAD by key and S3-ordered LIST pages
// (prefix, delimiter, start-after, continuation) answered without the origin.
import { fromBase64, toBase64, utf8 } from "../../../s3/bytes.ts";
import type { ListResult } from "../../../s3/listing-xml.ts";
import type { Manifest, ManifestEntry } from "../../../s3/manifest.ts";
import { META_CRC32C, META_MD5 } from "../../../s3/lineage.ts";
import type { ListParams, ObjectInfo } from "../origin/object-origin.ts";

const TOKEN_PREFIX = "ferry-manifest:";

function decodeToken(token: string): string {
  try {
    return new TextDecoder().decode(fromBase64(token));
  } catch {
    return "";
  }
}

export class ManifestIndex {
  readonly bucket: string;
  readonly prefix: string;
  private readonly entries: ManifestEntry[];
  private readonly byKey: Map<string, ManifestEntry>;

  constructor(bucket: string, manifest: Manifest) {
    this.bucket = bucket;
    this.prefix = manifest.header.prefix;
    this.entries = manifest.entries;
    this.byKey = new Map(manifest.entries.map((e) => [e.key, e]));
  }

  get size(): number {
    return this.entries.length;
  }

  covers(keyOrPrefix: string): boolean {
    return keyOrPrefix.startsWith(this.prefix);
  }

  head(key: string): ObjectInfo | undefined {
    const e = this.byKey.get(key);
    if (!e) return undefined;
    const metadata: Record<string, string> = {};
    if (e.crc32c) metadata[META_CRC32C] = e.crc32c;
    if (e.md5) metadata[META_MD5] = e.md5;
    return { bucket: this.bucket, key: e.key, size: e.size, etag: e.etag.replace(/^"(.*)"$/, "$1"), lastModified: new Date(e.lastModified), contentType: "binary/octet-stream", metadata };
  }

  /** First index whose key is > `after` (or ≥ `from` when inclusive). */
  private lowerBound(key: string, inclusive: boolean): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const k = this.entries[mid]?.key ?? "";
      if (inclusive ? k < key : k <= key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  list(params: ListParams): ListResult {
    const { prefix, delimiter, maxKeys } = params;
    let after = params.startAfter ?? "";
    if (params.continuationToken?.startsWith(TOKEN_PREFIX)) after = decodeToken(params.continuationToken.slice(TOKEN_PREFIX.length));
    const result: ListResult = { bucket: this.bucket, prefix, delimiter, maxKeys, objects: [], commonPrefixes: [], isTruncated: false };
    let i = after > prefix ? this.lowerBound(after, false) : this.lowerBound(prefix, true);
    let lastReturned = "";
    while (i < this.entries.length) {
      const e = this.entries[i];
      if (!e || !e.key.startsWith(prefix)) break;
      if (result.objects.length + result.commonPrefixes.length >= maxKeys) {
        result.isTruncated = true;
        break;
      }
      const rest = e.key.slice(prefix.length);
      const cut = delimiter ? rest.indexOf(delimiter) : -1;
      if (cut >= 0) {
        const common = prefix + rest.slice(0, cut + delimiter.length);
        result.commonPrefixes.push(common);
        lastReturned = common;
        // Skip every key under this common prefix.
        i = this.lowerBound(common + "\u{10FFFF}", true);
        continue;
      }
      result.objects.push({ key: e.key, size: e.size, etag: e.etag.startsWith('"') ? e.etag : `"${e.etag}"`, lastModified: new Date(e.lastModified) });
      lastReturned = e.key;
      i++;
    }
    if (result.isTruncated) result.nextContinuationToken = TOKEN_PREFIX + toBase64(utf8(lastReturned.endsWith(delimiter) && delimiter ? lastReturned + "\u{10FFFF}" : lastReturned));
    return result;
  }
}
