// The POSIX view's file tree: the agent's buckets as a read-only tree of folders and files
// (`/<bucket>/<key>`), answered from the metadata cache and the block cache. It speaks in
// paths and negative errno values; the FUSE front-ends (kernel-mount.ts, which talks to
// /dev/fuse itself and can hand large cached files to the kernel as passthrough files, and
// libfuse-mount.ts over fuse-native) turn it into a mount.
// The version a read serves is the one the last lookup or stat of that path saw (blocks are
// keyed by ETag, so a changed object is never served from old blocks; a file held open across
// a change reads the new version from then on).
import { constants } from "node:os";
import type { Logger } from "../log.ts";
import type { MetadataCache } from "../metadata/metadata-cache.ts";
import { OriginRefusedError, type ObjectInfo } from "../origin/object-origin.ts";
import type { BlockLease } from "../cache/block-cache.ts";
import type { ObjectReader } from "../read/object-reader.ts";
import type { RecentBlocks } from "./recent-blocks.ts";

const DIR_MODE = 0o040555;
const FILE_MODE = 0o100444;
/** Seconds the kernel may trust attributes and directory entries: never longer than the agent's metadata TTL. */
const KERNEL_CACHE_SECONDS = 60;
/** For immutable datasets: an hour, so long epochs never ask again. */
const IMMUTABLE_KERNEL_CACHE_SECONDS = 3600;

interface Entry {
  kind: "dir" | "file";
  size: number;
  mtime: Date;
  /** The object version (unquoted); "" for folders. */
  etag: string;
}

/** 0–999 from the ETag: the milliseconds of a file's mtime, so a same-size rewrite within one second still changes it. */
function etagMillis(etag: string): number {
  let h = 0;
  for (let i = 0; i < etag.length; i++) h = (Math.imul(h, 31) + etag.charCodeAt(i)) >>> 0;
  return h % 1000;
}

/** Negative errno values, as both FUSE front-ends answer them. */
export const Errno = {
  ENOENT: -constants.errno.ENOENT,
  EIO: -constants.errno.EIO,
  EROFS: -constants.errno.EROFS,
  EACCES: -constants.errno.EACCES,
  ENOSYS: -constants.errno.ENOSYS,
  ENOTDIR: -constants.errno.ENOTDIR,
} as const;

/** What stat() of a path says (the shape both front-ends encode). */
export interface FileAttributes {
  kind: "dir" | "file";
  mtime: Date;
  size: number;
  mode: number;
  nlink: number;
}

export interface DirectoryEntry {
  name: string;
  kind: "dir" | "file";
}

export interface TreeInput {
  metadata: MetadataCache;
  reader: ObjectReader;
  logger: Logger;
  metadataTtl: number | "indefinite";
  recent: RecentBlocks;
}

export class FileTree {
  private readonly metadata: MetadataCache;
  private readonly reader: ObjectReader;
  private readonly logger: Logger;
  /** The version of each file path the kernel last looked up or stat'ed: what its reads serve. */
  private readonly versions = new Map<string, ObjectInfo>();
  /** Kernel reads are ≤ 128 KiB: each block is read and verified once for all of them, not once per request. */
  private readonly recent: RecentBlocks;
  /** What readdir learned about children, so `ls -l` over 10k files costs no HEAD each. */
  private readonly entries = new Map<string, Entry & { at: number }>();
  /** Folders whose first page a lookup miss listed, and when (see listFolderOnce). */
  private readonly listedFolders = new Map<string, { at: number; done: Promise<void> }>();
  private readonly started = new Date();

  /** Seconds the kernel (and the readdir entries here) may trust what they were told. */
  readonly kernelCacheSeconds: number;
  /** `--metadata-ttl indefinite`: objects never change under a path. */
  readonly immutable: boolean;

  constructor(input: TreeInput) {
    this.immutable = input.metadataTtl === "indefinite";
    this.kernelCacheSeconds = input.metadataTtl === "indefinite" ? IMMUTABLE_KERNEL_CACHE_SECONDS : Math.min(KERNEL_CACHE_SECONDS, input.metadataTtl);
    this.metadata = input.metadata;
    this.reader = input.reader;
    this.recent = input.recent;
    this.logger = input.logger;
  }

  /** The errno for a failure: a number thrown by the tree, EACCES for a refused key, else EIO (logged). */
  errno(error: unknown, path?: string): number {
    if (typeof error === "number") return error;
    if (error instanceof OriginRefusedError && error.status === 403) return Errno.EACCES;
    this.logger.warn("fuse operation failed", { path, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
    return Errno.EIO;
  }

  /** Bucket and key of a tree path ("/bucket/key": the kernel's names never hold a slash, so paths are never doubled up). */
  split(path: string): { bucket: string; key: string } {
    // Called several times per entry of a READDIRPLUS: no split/filter/join arrays.
    const from = path.startsWith("/") ? 1 : 0;
    const slash = path.indexOf("/", from);
    const trimmed = (text: string) => (text.endsWith("/") ? text.slice(0, -1) : text);
    return slash < 0 ? { bucket: path.slice(from), key: "" } : { bucket: path.slice(from, slash), key: trimmed(path.slice(slash + 1)) };
  }

  /** The ETag of the version stat last reported for file `path` (from a HEAD or a listing), if any. */
  etag(path: string): string | undefined {
    return this.versions.get(path)?.etag ?? this.fresh(path)?.etag;
  }

  /** The object version reads of `path` serve now, if a stat has seen one. */
  version(path: string): ObjectInfo | undefined {
    return this.versions.get(path);
  }

  /**
   * The version of file `path` as far as memory knows it: a stat or read of the path, else a
   * fresh HEAD of its object (a `ferry warm` made one for every object it warmed). No I/O.
   */
  knownVersion(path: string): ObjectInfo | undefined {
    const seen = this.versions.get(path);
    if (seen) return seen;
    const { bucket, key } = this.split(path);
    const info = bucket && key ? this.metadata.cachedHead(bucket, key) : undefined;
    // A listing that saw another version since is the newer word.
    const listed = this.fresh(path)?.etag;
    return info && (listed === undefined || listed === info.etag) ? info : undefined;
  }

  private stat(entry: Entry): FileAttributes {
    // auto_cache drops a file's cached pages when the mtime it sees changes, so the mtime must
    // change with the version and only then: whole seconds (LIST and manifests carry
    // milliseconds, HEAD does not) plus milliseconds taken from the ETag (a rewrite of the
    // same size within the same second is still a new version).
    const mtime = new Date(Math.floor(entry.mtime.getTime() / 1000) * 1000 + etagMillis(entry.etag));
    return { kind: entry.kind, mtime, size: entry.kind === "dir" ? 4096 : entry.size, mode: entry.kind === "dir" ? DIR_MODE : FILE_MODE, nlink: entry.kind === "dir" ? 2 : 1 };
  }

  /** Attributes of `path` from a listing the kernel may still trust, with no wait (a READDIRPLUS entry); undefined when there is none. */
  listedAttributes(path: string): FileAttributes | undefined {
    const known = this.fresh(path);
    return known ? this.statListed(path, known) : undefined;
  }

  /** Attributes of `path`; throws Errno.ENOENT when it is neither a file nor a folder. */
  async getattr(path: string): Promise<FileAttributes> {
    const { bucket, key } = this.split(path);
    if (!bucket) return this.stat({ kind: "dir", size: 0, mtime: this.started, etag: "" });
    if (!(await this.metadata.listBuckets()).includes(bucket)) throw Errno.ENOENT;
    if (!key) return this.stat({ kind: "dir", size: 0, mtime: this.started, etag: "" });
    const known = this.fresh(path);
    if (known) return this.statListed(path, known);
    // The first miss in a folder lists the folder's first page beside its HEAD: a job that
    // opens many files of one folder by path (no readdir) then pays one LIST per 1,000 files,
    // not a HEAD each. Misses that arrive while that listing runs wait for it instead.
    const listing = this.listFolderOnce(path.slice(0, path.lastIndexOf("/")));
    if (!listing.started) {
      await listing.done;
      const listed = this.fresh(path);
      if (listed) return this.statListed(path, listed);
    }
    // A key granted only a prefix may not HEAD the folders above it: a refused HEAD is not
    // an answer, the listing below decides whether the path is a folder.
    const info = await this.metadata.head(bucket, key).catch((error: unknown) => {
      if (error instanceof OriginRefusedError && error.status === 403) return undefined;
      throw error;
    });
    if (info) {
      this.remember(path, info);
      return this.stat({ kind: "file", size: info.size, mtime: info.lastModified, etag: info.etag });
    }
    const children = await this.metadata.list(bucket, { prefix: `${key}/`, delimiter: "/", maxKeys: 1 });
    if (children.objects.length || children.commonPrefixes.length) return this.stat({ kind: "dir", size: 0, mtime: this.started, etag: "" });
    throw Errno.ENOENT;
  }

  /**
   * Attributes from a listing. A read serves the version the last stat saw, so a listing that
   * shows a new version must also drop the one remembered for reads (the next read learns the
   * new one), or the kernel would see the new size and mtime while reads served old bytes.
   */
  private statListed(path: string, entry: Entry): FileAttributes {
    if (entry.kind === "file" && this.versions.get(path)?.etag !== entry.etag) this.versions.delete(path);
    return this.stat(entry);
  }

  /** What readdir or a folder listing said of `path`, while the kernel may still trust it. */
  private fresh(path: string): Entry | undefined {
    const known = this.entries.get(path);
    return known && Date.now() - known.at < this.kernelCacheSeconds * 1000 ? known : undefined;
  }

  /**
   * Lists the first page of folder `path` once per kernel-cache period; `started` tells the
   * caller it began the listing (and so should not wait for it). A failed listing (a key
   * granted only some files, say) only costs the saving: lookups fall back to HEAD.
   */
  private listFolderOnce(path: string): { started: boolean; done: Promise<void> } {
    const at = this.listedFolders.get(path);
    if (at !== undefined && Date.now() - at.at < this.kernelCacheSeconds * 1000) return { started: false, done: at.done };
    const done = this.listPage(path, undefined)
      .then(() => undefined)
      .catch((error: unknown) => {
        this.logger.debug("folder listing for lookups failed", { path, error: error instanceof Error ? error.message : String(error) });
      });
    this.listedFolders.set(path, { at: Date.now(), done });
    if (this.listedFolders.size > 100_000) this.listedFolders.clear();
    return { started: true, done };
  }

  /** One LIST page of folder `path` (from `token`), remembered as entries; the children in it and the next token. */
  private async listPage(path: string, token: string | undefined): Promise<{ names: DirectoryEntry[]; next: string | undefined }> {
    const { bucket, key } = this.split(path);
    const prefix = key ? `${key}/` : "";
    const names: DirectoryEntry[] = [];
    const now = Date.now();
    const page = await this.metadata.list(bucket, { prefix, delimiter: "/", maxKeys: 1000, ...(token ? { continuationToken: token } : {}) });
    for (const p of page.commonPrefixes) {
      const name = p.slice(prefix.length, -1);
      if (!name || name === "." || name === "..") continue;
      names.push({ name, kind: "dir" });
      this.entries.set(`${path === "/" ? "" : path}/${name}`, { kind: "dir", size: 0, mtime: this.started, etag: "", at: now });
    }
    for (const o of page.objects) {
      const name = o.key.slice(prefix.length);
      if (!name || name.includes("/")) continue;
      names.push({ name, kind: "file" });
      this.entries.set(`${path === "/" ? "" : path}/${name}`, { kind: "file", size: o.size, mtime: o.lastModified, etag: o.etag.replace(/^"|"$/g, ""), at: now });
    }
    if (this.entries.size > 500_000) this.entries.clear();
    return { names, next: page.isTruncated ? page.nextContinuationToken : undefined };
  }

  /** The children of folder `path` (every LIST page). */
  async readdir(path: string): Promise<DirectoryEntry[]> {
    const { bucket, key } = this.split(path);
    if (!bucket) return (await this.metadata.listBuckets()).map((name) => ({ name, kind: "dir" as const }));
    const names: DirectoryEntry[] = [];
    let token: string | undefined;
    do {
      const page = await this.listPage(path, token);
      names.push(...page.names);
      token = page.next;
    } while (token);
    if (!names.length && key && !(await this.metadata.head(bucket, key).catch(() => undefined)) && !(await this.metadata.listBuckets()).includes(bucket)) throw Errno.ENOENT;
    return names;
  }

  private remember(path: string, info: ObjectInfo): void {
    this.versions.set(path, info);
    // A bound, not an LRU: entries are re-learned by the next stat, and a clear is rare.
    if (this.versions.size > 500_000) this.versions.clear();
  }

  /** Reads up to `length` bytes at `position` of file `path` into `buffer`: the byte count (0 at the end). */
  async read(path: string, buffer: Buffer, length: number, position: number): Promise<number> {
    const info = await this.readVersion(path, position);
    if (position >= info.size) return 0;
    return this.recent.copy(info, position, Math.min(length, info.size - position), buffer);
  }

  /**
   * Up to `length` bytes at `position` of file `path`, lent without a copy: one lease per
   * block the range touches (none at the end); the caller releases each once written.
   */
  async lend(path: string, length: number, position: number): Promise<BlockLease[]> {
    const info = await this.readVersion(path, position);
    const end = Math.min(info.size, position + length);
    const bs = this.reader.blockSizeBytes;
    const leases: BlockLease[] = [];
    try {
      for (let at = position; at < end; ) {
        const n = Math.min(end, (Math.floor(at / bs) + 1) * bs) - at;
        leases.push(await this.recent.lend(info, at, n));
        at += n;
      }
    } catch (error) {
      for (const lease of leases) lease.release();
      throw error;
    }
    return leases;
  }

  /** The version reads of `path` serve, learning it if no stat has yet. */
  private async readVersion(path: string, position: number): Promise<ObjectInfo> {
    const known = this.versions.get(path);
    if (known) return known;
    // Known from a listing (or not at all): a read at the front fetches the metadata with
    // the first block, one round trip instead of a HEAD and then a GET.
    const { bucket, key } = this.split(path);
    const front = position < this.reader.blockSizeBytes;
    const info = bucket && key ? await (front ? this.metadata.headForRead(bucket, key) : this.metadata.head(bucket, key)) : undefined;
    if (!info) throw Errno.ENOENT;
    this.remember(path, info);
    return info;
  }
}
