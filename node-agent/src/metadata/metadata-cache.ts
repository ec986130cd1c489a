// Object metadata for the agent: HEAD results trusted for the metadata TTL (or forever for
// immutable datasets), then revalidated with a conditional request; LIST pages cached
// for the TTL with identical concurrent LISTs coalesced; dataset manifests loaded with one
// GET and answering LIST/HEAD for their prefix from memory. When the origin is down, what
// is known is served stale rather than failing (stale-if-error).
import type { ListResult } from "../../../s3/listing-xml.ts";
import { candidateManifestKeys, manifestPrefixOf, parseManifest, RESERVED_PREFIX } from "../../../s3/manifest.ts";
import type { Logger } from "../log.ts";
import type { ArrivingBytes } from "../origin/arriving-bytes.ts";
import { OriginRefusedError, OriginUnavailableError, type ListParams, type ObjectInfo, type ObjectOrigin } from "../origin/object-origin.ts";
import { Singleflight } from "../read/singleflight.ts";
import { ManifestIndex } from "./manifest-index.ts";

export interface MetadataCacheOptions {
  origin: ObjectOrigin;
  logger: Logger;
  /** Seconds metadata is trusted; "indefinite" for immutable datasets. */
  ttlSeconds: number | "indefinite";
  /** Called when an object's ETag changed, so its old blocks can go. */
  onChanged?: (bucket: string, key: string) => void;
  now?: () => number;
}

interface Entry<T> {
  value: T;
  fetchedAt: number;
}

export interface MetadataStats {
  headHits: number;
  headMisses: number;
  revalidations: number;
  changedObjects: number;
  listHits: number;
  listMisses: number;
  manifestLists: number;
  staleServed: number;
  manifestsLoaded: number;
  /** Manifest keys asked for that did not exist (each a GET to the origin). */
  manifestMisses: number;
}

interface LoadedManifest {
  index: ManifestIndex;
  etag: string;
  /**
   * Manifest keys below this manifest's prefix, listed when it loaded (nested datasets);
   * undefined when not known (more than one LIST page, or the listing was refused).
   */
  nested: ReadonlySet<string> | undefined;
}

const MAX_ENTRIES = 200_000;

export class MetadataCache {
  readonly stats: MetadataStats = { headHits: 0, headMisses: 0, revalidations: 0, changedObjects: 0, listHits: 0, listMisses: 0, manifestLists: 0, staleServed: 0, manifestsLoaded: 0, manifestMisses: 0 };
  private readonly origin: ObjectOrigin;
  private readonly logger: Logger;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly onChanged: (bucket: string, key: string) => void;
  private readonly heads = new Map<string, Entry<ObjectInfo | undefined>>();
  private readonly lists = new Map<string, Entry<ListResult>>();
  private readonly manifests = new Map<string, Entry<LoadedManifest | undefined>>();
  private buckets: Entry<string[]> | undefined;
  private readonly headFlight = new Singleflight<ObjectInfo | undefined>();
  private readonly listFlight = new Singleflight<ListResult>();
  private readonly manifestFlight = new Singleflight<ManifestIndex | undefined>();
  /** For reads of objects not known yet: where the first block fetched with the metadata goes. */
  private firstBlock: { sizeBytes: number; land: (info: ObjectInfo, data: ArrivingBytes) => void; mayBeCached: (bucket: string, key: string) => boolean } | undefined;

  constructor(options: MetadataCacheOptions) {
    this.origin = options.origin;
    this.logger = options.logger;
    this.ttlMs = options.ttlSeconds === "indefinite" ? Number.POSITIVE_INFINITY : options.ttlSeconds * 1000;
    this.now = options.now ?? Date.now;
    this.onChanged = options.onChanged ?? (() => undefined);
  }

  private fresh(entry: Entry<unknown> | undefined): boolean {
    return entry !== undefined && this.now() - entry.fetchedAt < this.ttlMs;
  }

  private remember<T>(map: Map<string, Entry<T>>, key: string, value: T): void {
    map.delete(key);
    map.set(key, { value, fetchedAt: this.now() });
    if (map.size > MAX_ENTRIES) {
      const oldest = map.keys().next().value;
      if (oldest !== undefined) map.delete(oldest);
    }
  }

  async listBuckets(): Promise<string[]> {
    if (this.buckets && this.fresh(this.buckets)) return this.buckets.value;
    try {
      const value = await this.origin.listBuckets();
      this.buckets = { value, fetchedAt: this.now() };
      return value;
    } catch (error) {
      if (error instanceof OriginUnavailableError && this.buckets) {
        this.stats.staleServed++;
        return this.buckets.value;
      }
      throw error;
    }
  }

  /** Metadata of one object, or undefined when it does not exist. */
  async head(bucket: string, key: string): Promise<ObjectInfo | undefined> {
    const id = `${bucket}\n${key}`;
    const cached = this.heads.get(id);
    if (this.fresh(cached)) {
      this.stats.headHits++;
      return cached?.value;
    }
    const manifest = key.startsWith(RESERVED_PREFIX) ? undefined : await this.manifestFor(bucket, key);
    if (manifest) {
      this.stats.headHits++;
      return manifest.head(key);
    }
    this.stats.headMisses++;
    return this.headFlight.run(id, () => this.fetchHead(bucket, key, cached)).promise;
  }

  /** The metadata of one object if a fresh HEAD of it is in memory; never asks the origin. */
  cachedHead(bucket: string, key: string): ObjectInfo | undefined {
    const cached = this.heads.get(`${bucket}\n${key}`);
    return this.fresh(cached) ? cached?.value : undefined;
  }

  /**
   * Lets headForRead() fetch the first `sizeBytes` with the metadata and hand them to `land`
   * (the read path), for objects `mayBeCached` says the cache cannot hold: bytes already on
   * disk (a restarted agent knows its blocks, not yet their objects' metadata) are never
   * downloaded again for the saving of a round trip.
   */
  landFirstBlocksWith(sizeBytes: number, land: (info: ObjectInfo, data: ArrivingBytes) => void, mayBeCached: (bucket: string, key: string) => boolean = () => false): void {
    this.firstBlock = { sizeBytes, land, mayBeCached };
  }

  /**
   * Like head(), for a caller about to read the object: an object not known yet is fetched
   * with its first block in one request (one round trip to a far origin instead of two).
   */
  async headForRead(bucket: string, key: string): Promise<ObjectInfo | undefined> {
    const id = `${bucket}\n${key}`;
    const first = this.firstBlock;
    const getFirst = this.origin.headWithFirstBlock?.bind(this.origin);
    if (!first || !getFirst || this.heads.has(id) || key.startsWith(RESERVED_PREFIX) || first.mayBeCached(bucket, key)) return this.head(bucket, key);
    // Manifests not probed yet load behind this read instead of before it: on a far origin
    // each probe is a round trip (two for a key one folder deep), and this GET brings the
    // object's own metadata anyway.
    const manifest = this.knownManifest(bucket, key);
    if (manifest === "unknown") this.manifestFor(bucket, key).catch(() => undefined);
    else if (manifest) return this.head(bucket, key);
    this.stats.headMisses++;
    return this.headFlight.run(id, async () => {
      const got = await getFirst(bucket, key, first.sizeBytes);
      this.remember(this.heads, id, got?.info);
      if (got && got.first.length > 0) first.land(got.info, got.first);
      return got?.info;
    }).promise;
  }

  private async fetchHead(bucket: string, key: string, stale: Entry<ObjectInfo | undefined> | undefined): Promise<ObjectInfo | undefined> {
    const id = `${bucket}\n${key}`;
    try {
      if (stale?.value) {
        this.stats.revalidations++;
        const result = await this.origin.revalidate(bucket, key, stale.value.etag);
        if (result === "unchanged") {
          this.remember(this.heads, id, stale.value);
          return stale.value;
        }
        this.stats.changedObjects++;
        this.onChanged(bucket, key);
        this.remember(this.heads, id, result);
        return result;
      }
      const info = await this.origin.head(bucket, key);
      this.remember(this.heads, id, info);
      return info;
    } catch (error) {
      if (error instanceof OriginUnavailableError && stale) {
        this.stats.staleServed++;
        this.logger.warn("origin unavailable, serving stale metadata", { bucket, key });
        return stale.value;
      }
      throw error;
    }
  }

  /** Forgets what is known of one object (e.g. after the origin said it changed). */
  invalidate(bucket: string, key: string): void {
    this.heads.delete(`${bucket}\n${key}`);
  }

  async list(bucket: string, params: ListParams): Promise<ListResult> {
    const manifest = params.prefix.startsWith(RESERVED_PREFIX) ? undefined : await this.manifestFor(bucket, params.prefix);
    if (manifest) {
      this.stats.manifestLists++;
      return manifest.list(params);
    }
    const id = JSON.stringify([bucket, params.prefix, params.delimiter, params.maxKeys, params.continuationToken ?? "", params.startAfter ?? ""]);
    const cached = this.lists.get(id);
    if (this.fresh(cached) && cached) {
      this.stats.listHits++;
      return cached.value;
    }
    this.stats.listMisses++;
    return this.listFlight.run(id, async () => {
      try {
        const result = await this.origin.list(bucket, params);
        this.remember(this.lists, id, result);
        return result;
      } catch (error) {
        if (error instanceof OriginUnavailableError && cached) {
          this.stats.staleServed++;
          return cached.value;
        }
        throw error;
      }
    }).promise;
  }

  /** The nearest manifest covering `key` as far as memory knows, or "unknown" while a candidate is not probed (or stale). */
  private knownManifest(bucket: string, key: string): ManifestIndex | undefined | "unknown" {
    for (const manifestKey of candidateManifestKeys(key)) {
      const entry = this.manifests.get(`${bucket}\n${manifestKey}`);
      if (!this.fresh(entry)) return "unknown";
      if (entry?.value?.index.covers(key)) return entry.value.index;
    }
    return undefined;
  }

  /**
   * The nearest loaded manifest covering `keyOrPrefix`, loading candidates on first use. A
   * loaded manifest further up that knows the manifests below it answers for the nearer
   * candidates without a GET each: a walk of a data set's 1,000 folders would otherwise ask
   * the origin for 1,000 manifests that do not exist, one round trip per folder.
   */
  private async manifestFor(bucket: string, keyOrPrefix: string): Promise<ManifestIndex | undefined> {
    const candidates = candidateManifestKeys(keyOrPrefix);
    const above = this.nestedKnownAbove(bucket, candidates);
    for (const [at, manifestKey] of candidates.entries()) {
      // (One already loaded is still used: it may have been published after that listing.)
      if (above && at < above.at && !above.nested.has(manifestKey) && !this.manifests.get(`${bucket}\n${manifestKey}`)?.value) continue;
      const index = await this.manifest(bucket, manifestKey);
      if (index?.covers(keyOrPrefix)) return index;
    }
    return undefined;
  }

  /** The nearest of `candidates` (nearest first) loaded, fresh and knowing its nested manifests: where it is in the list, and those. */
  private nestedKnownAbove(bucket: string, candidates: string[]): { at: number; nested: ReadonlySet<string> } | undefined {
    for (const [at, manifestKey] of candidates.entries()) {
      const entry = this.manifests.get(`${bucket}\n${manifestKey}`);
      const nested = this.fresh(entry) ? entry?.value?.nested : undefined;
      if (nested) return { at, nested };
    }
    return undefined;
  }

  /** The manifest keys below `manifestKey`'s prefix, from one LIST page; undefined when there are more or the listing fails (nearer candidates are then asked for one by one). */
  private async nestedManifests(bucket: string, manifestKey: string): Promise<ReadonlySet<string> | undefined> {
    const dir = manifestKey.slice(0, manifestKey.lastIndexOf("/") + 1);
    try {
      const page = await this.origin.list(bucket, { prefix: dir, delimiter: "", maxKeys: 1000 });
      if (page.isTruncated) return undefined;
      return new Set(page.objects.map((o) => o.key).filter((key) => key !== manifestKey && manifestPrefixOf(key) !== undefined));
    } catch (error) {
      this.logger.debug("nested manifests not listed, asking for each instead", { bucket, manifestKey, error: error instanceof Error ? error.message : String(error) });
      return undefined;
    }
  }

  private async manifest(bucket: string, manifestKey: string): Promise<ManifestIndex | undefined> {
    const id = `${bucket}\n${manifestKey}`;
    const cached = this.manifests.get(id);
    if (this.fresh(cached)) return cached?.value?.index;
    return this.manifestFlight.run(id, async () => {
      try {
        // A loaded manifest is revalidated, not downloaded again: it can be megabytes.
        const got = await this.origin.getSmall(bucket, manifestKey, cached?.value?.etag);
        if (got === "unchanged" && cached?.value) {
          // Datasets may have been replicated below this one since: their manifests are listed again.
          this.remember(this.manifests, id, { ...cached.value, nested: await this.nestedManifests(bucket, manifestKey) });
          return cached.value.index;
        }
        const loaded = got && got !== "unchanged" ? { index: new ManifestIndex(bucket, await parseManifest(got.bytes)), etag: got.etag, nested: await this.nestedManifests(bucket, manifestKey) } : undefined;
        if (loaded) {
          this.stats.manifestsLoaded++;
          this.logger.info("manifest loaded", { bucket, manifestKey, objects: loaded.index.size, nestedManifests: loaded.nested?.size ?? "unknown" });
        } else this.stats.manifestMisses++;
        this.remember(this.manifests, id, loaded);
        return loaded?.index;
      } catch (error) {
        if (error instanceof OriginUnavailableError && cached) return cached.value?.index;
        if (error instanceof OriginUnavailableError) throw error;
        // A manifest we cannot read or are not allowed to read is as good as none: fall back to LIST.
        const refused = error instanceof OriginRefusedError && error.status === 403;
        this.logger[refused ? "debug" : "warn"]("manifest unusable, listing instead", { bucket, manifestKey, error: error instanceof Error ? error.message : String(error) });
        this.remember(this.manifests, id, undefined);
        return undefined;
      }
    }).promise;
  }
}
