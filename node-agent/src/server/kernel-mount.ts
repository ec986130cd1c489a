// The POSIX view on the agent's own /dev/fuse connection (the default when the agent runs as
// root): the file tree's paths become kernel inodes here, and opens decide how each file is
// read. Large objects whose blocks are all cached open as passthrough files (see
// passthrough-files.ts): the kernel reads a plain file on the cache disk at local-disk speed.
// Everything else reads through FUSE with the kernel caching attributes, entries and data;
// an open keeps the kernel's cached pages only while the version behind them is the one the
// last stat saw (what libfuse calls auto_cache), so a changed object is never served from
// old pages. In page-cache mode (immutable datasets only) no open reaches the agent at all:
// the kernel opens files by itself and keeps their pages (see READER_SOURCE), and only READs
// of pages not in memory come here. Folder reads carry every entry's attributes
// (READDIRPLUS: a walk that stats each file sends no LOOKUP), and an immutable tree's
// listings stay in the kernel. What gets a file ready to pass through is
// passthrough-readiness.ts's.
import type { MountedView } from "../main.ts";
import { Errno, FileTree, type FileAttributes, type TreeInput } from "./file-tree.ts";
import { PassthroughFiles } from "./passthrough-files.ts";
import { ATTR_OUT_BYTES, attrOut, direntBytes, direntplusBytes, DT_DIR, DT_REG, ENTRY_OUT_BYTES, entryOut, Op, OPEN_OUT_BYTES, OpenFlag, openOut, OUT_HEADER_BYTES, replyFrame, STATFS_OUT_BYTES, statfsOut, writeDirent, writeDirentplus } from "./fuse-kernel/protocol.ts";
import { KernelSession, type FuseRequest } from "./fuse-kernel/session.ts";
import type { ObjectInfo } from "../origin/object-origin.ts";
import type { ObjectReader } from "../read/object-reader.ts";
import { InodeTable, ROOT_ID, type Node } from "./inode-table.ts";
import { LOOKUP_PIN_WAIT_MS, PassthroughReadiness, settledWithin } from "./passthrough-readiness.ts";

/**
 * Most of the cache the mount's passthrough files may hold from eviction at once: below the
 * low watermark (85%), so eviction can always make room for fills with the rest.
 */
const HELD_SHARE_OF_CACHE = 0.75;
/** Inode numbers for readdir entries the kernel has not looked up yet (never 0: glibc skips those). */
const UNLOOKED_INO_BASE = 1n << 40n;
const WRITE_OPCODES = new Set([4 /* SETATTR */, 6, 8, 9, 10, 11, 12, 13, 16 /* WRITE */, 21 /* SETXATTR */, 24, 35 /* CREATE */, 43, 45]);

/** A folder's entry as READDIRs page through it: its name as the kernel gets it, and as paths use it. */
type ListedEntry = { name: Buffer; text: string; kind: "dir" | "file" };
function listed(text: string, kind: "dir" | "file"): ListedEntry {
  return { name: Buffer.from(text), text, kind };
}
type Handle = { kind: "file"; node: Node; passthrough: ObjectInfo | undefined } | { kind: "dir"; node: Node; listing: Promise<ListedEntry[]> | undefined };

export class KernelMount implements MountedView {
  private readonly tree: FileTree;
  private readonly reader: ObjectReader;
  private readonly inodes = new InodeTable();
  private readonly handles = new Map<bigint, Handle>();
  private nextHandle = 1n;
  private session!: KernelSession;
  private passthrough: PassthroughFiles | undefined;
  private readiness!: PassthroughReadiness;
  /** Requests by opcode, since mount. */
  private readonly requests: Record<number, number> = {};

  private constructor(tree: FileTree, reader: ObjectReader) {
    this.tree = tree;
    this.reader = reader;
  }

  static async mount(input: TreeInput & { mountPoint: string; cacheDir: string; cacheSizeBytes: number; passthroughBudgetBytes: number; mode: "passthrough" | "page-cache" }): Promise<KernelMount> {
    const view = new KernelMount(new FileTree(input), input.reader);
    view.session = await KernelSession.mount({
      mountPoint: input.mountPoint,
      logger: input.logger,
      // Passthrough needs an answer to each open; page-cache mode leaves opens to the kernel.
      passthrough: input.mode === "passthrough" && input.passthroughBudgetBytes > 0,
      kernelOpens: input.mode === "page-cache",
      onRequest: (request) => view.handle(request),
    });
    // Two blocks: a smaller file costs more to copy than its reads through FUSE lose.
    const passthroughMinBytes = view.session.passthrough ? 2 * input.reader.blockSizeBytes : Number.POSITIVE_INFINITY;
    if (view.session.passthrough) {
      view.passthrough = new PassthroughFiles({
        dir: input.cacheDir,
        budgetBytes: input.passthroughBudgetBytes,
        heldLimitBytes: Math.floor(input.cacheSizeBytes * HELD_SHARE_OF_CACHE),
        minBytes: passthroughMinBytes,
        reader: input.reader,
        registry: view.session,
        logger: input.logger,
      });
    }
    view.readiness = new PassthroughReadiness({ tree: view.tree, reader: input.reader, session: view.session, inodes: view.inodes, passthrough: view.passthrough, passthroughMinBytes });
    return view;
  }

  status(): Record<string, unknown> {
    return { driver: "kernel", mode: this.session.kernelOpens ? "page-cache" : "passthrough", inodes: this.inodes.size, openHandles: this.handles.size, requests: this.requests, fastOpens: this.session.fastOpens, readerReads: this.session.readerReads, passthrough: this.passthrough?.stats() ?? null };
  }

  async unmount(): Promise<void> {
    this.passthrough?.close();
    await this.session.unmount();
  }

  private handle(request: FuseRequest): void {
    const { opcode, unique } = request;
    this.requests[opcode] = (this.requests[opcode] ?? 0) + 1;
    switch (opcode) {
      case Op.LOOKUP:
        return this.answer(unique, this.lookup(request));
      case Op.FORGET:
        return this.forget(request.nodeid, Number(request.arg.readBigUInt64LE(0)));
      case Op.BATCH_FORGET: {
        const count = request.arg.readUInt32LE(0);
        for (let i = 0; i < count; i++) this.forget(request.arg.readBigUInt64LE(8 + i * 16), Number(request.arg.readBigUInt64LE(16 + i * 16)));
        return;
      }
      case Op.GETATTR:
        return this.answer(unique, this.getattr(unique, request.nodeid));
      case Op.OPEN:
        return this.answer(unique, this.open(request));
      case Op.READ:
        return this.read(request);
      case Op.RELEASE:
        return this.release(unique, request.arg.readBigUInt64LE(0));
      case Op.OPENDIR:
        return this.answer(unique, this.opendir(unique, request.nodeid));
      case Op.READDIR:
        return this.answer(unique, this.readdir(request, false));
      case Op.READDIRPLUS:
        return this.answer(unique, this.readdir(request, true));
      case Op.RELEASEDIR:
        this.handles.delete(request.arg.readBigUInt64LE(0));
        return this.session.reply(replyFrame(unique, 0, 0));
      case Op.STATFS: {
        const frame = replyFrame(unique, 0, STATFS_OUT_BYTES);
        statfsOut(frame, OUT_HEADER_BYTES);
        return this.session.reply(frame);
      }
      default:
        // FLUSH, ACCESS, xattrs and the rest: ENOSYS once, and the kernel stops asking.
        return this.session.reply(replyFrame(unique, WRITE_OPCODES.has(opcode) ? Errno.EROFS : Errno.ENOSYS, 0));
    }
  }

  /** Sends what `work` resolves to (a finished frame), or the errno it fails with. */
  private answer(unique: bigint, work: Promise<Buffer>): void {
    work.then(
      (frame) => this.session.reply(frame),
      (error: unknown) => this.session.reply(replyFrame(unique, this.tree.errno(error), 0)),
    );
  }

  private node(id: bigint): Node {
    const node = this.inodes.get(id);
    if (!node) throw Errno.ENOENT;
    return node;
  }

  private attr(node: Node, a: FileAttributes) {
    return { ino: node.id, size: a.size, mtimeMs: a.mtime.getTime(), mode: a.mode, nlink: a.nlink };
  }

  private async lookup(request: FuseRequest): Promise<Buffer> {
    const nul = request.arg.indexOf(0);
    const name = request.arg.toString("utf8", 0, nul < 0 ? request.arg.length : nul);
    const parent = this.node(request.nodeid);
    const path = parent.path === "/" ? `/${name}` : `${parent.path}/${name}`;
    const attributes = await this.tree.getattr(path);
    const node = this.inodes.looked(path);
    // A wholly cached file (a warmed one): the reply waits a moment for its passthrough
    // file, so that the open which follows passes through; a loader keeps that first open
    // for the whole run.
    const ready = this.readiness.forOpens(node, attributes, { listed: false });
    if (ready) await settledWithin(ready, LOOKUP_PIN_WAIT_MS);
    const frame = replyFrame(request.unique, 0, ENTRY_OUT_BYTES);
    entryOut(frame, OUT_HEADER_BYTES, this.attr(node, attributes), this.tree.kernelCacheSeconds);
    return frame;
  }

  private forget(id: bigint, lookups: number): void {
    const node = this.inodes.forget(id, lookups);
    if (!node) return;
    // Forgotten: the kernel holds no open file of it, so its pinned copy can go.
    this.session.unmarkFastOpen(id);
    if (node.readerBlocks) this.session.forgetBlockFiles(id);
    node.readerBlocks = undefined;
    if (node.pinned) this.passthrough?.unpin(node.pinned);
    node.pinned = undefined;
  }

  private async getattr(unique: bigint, id: bigint): Promise<Buffer> {
    const node = this.node(id);
    const attributes = await this.tree.getattr(node.path);
    const frame = replyFrame(unique, 0, ATTR_OUT_BYTES);
    attrOut(frame, OUT_HEADER_BYTES, this.attr(node, attributes), this.tree.kernelCacheSeconds);
    return frame;
  }

  private async open(request: FuseRequest): Promise<Buffer> {
    const node = this.node(request.nodeid);
    if ((request.arg.readUInt32LE(0) & 3) !== 0 /* O_ACCMODE, O_RDONLY */) throw Errno.EROFS;
    // A file no stat or read has pinned to a version yet (listed in its folder's page) still
    // has the one its lookup prepared a passthrough file for, from a warm's HEAD.
    const info = this.tree.version(node.path) ?? this.tree.knownVersion(node.path);
    let backingId = -1;
    let passthrough: ObjectInfo | undefined;
    if (node.passthroughOpens > 0 && node.passthroughInfo) {
      // The kernel allows one mode per inode at a time: later opens join the passthrough ones.
      backingId = this.passthrough?.acquire(node.passthroughInfo) ?? -1;
      if (backingId >= 0) passthrough = node.passthroughInfo;
    } else if (info && node.cachedOpens === 0 && this.passthrough) {
      backingId = this.passthrough.acquire(info) ?? -1;
      if (backingId >= 0) passthrough = info;
    }
    const fh = this.nextHandle++;
    let flags: number;
    if (passthrough) {
      node.passthroughOpens++;
      node.passthroughInfo = passthrough;
      flags = OpenFlag.PASSTHROUGH;
    } else {
      if (node.passthroughOpens > 0) throw Errno.EIO; // the copy of the version being passed through is gone
      node.cachedOpens++;
      const etag = this.tree.etag(node.path);
      flags = etag !== undefined && node.pagesEtag === etag ? OpenFlag.KEEP_CACHE : 0;
      node.pagesEtag = etag;
    }
    this.handles.set(fh, { kind: "file", node, passthrough });
    const frame = replyFrame(request.unique, 0, OPEN_OUT_BYTES);
    openOut(frame, OUT_HEADER_BYTES, fh, flags | OpenFlag.NOFLUSH, passthrough ? backingId : 0);
    return frame;
  }

  private read(request: FuseRequest): void {
    const fh = request.arg.readBigUInt64LE(0);
    const offset = Number(request.arg.readBigUInt64LE(8));
    const size = request.arg.readUInt32LE(16);
    const handle = this.handles.get(fh);
    const node = handle?.node ?? this.inodes.get(request.nodeid);
    if (!node) return this.session.reply(replyFrame(request.unique, Errno.ENOENT, 0));
    // The reply gathers the held blocks' bytes in one writev: no copy into a reply buffer.
    this.tree.lend(node.path, size, offset).then(
      (leases) => {
        const n = leases.reduce((total, lease) => total + lease.data.length, 0);
        try {
          this.session.replyData(request.unique, leases.map((lease) => lease.data));
        } finally {
          for (const lease of leases) lease.release();
        }
        const info = this.tree.version(node.path);
        if (info && n > 0) this.registerBlocks(node, info, offset, offset + n);
        if (node.fastOpen) {
          // Any READ reaching this thread may be the one that completes the object's blocks
          // (records are read at random, rarely up to the last byte, and a lookup before the
          // first read knows no version to pin), and the later ones may all be answered by the
          // reader thread: a copy pinned once the blocks land lets the next opens pass through.
          void this.readiness.pin(node);
        } else if (offset + n >= (info?.size ?? Number.POSITIVE_INFINITY)) {
          // The end of a file read through FUSE: its blocks are (about to be) cached, so a copy
          // made now lets its next opens pass through.
          this.readiness.prepare(node, { retry: true });
        } else if (node.readerBlocks) {
          // The reader thread may answer the rest of this file's READs, its end included: one
          // try now (a wholly cached object starts its copy), no retries.
          this.readiness.prepare(node, { retry: false });
        }
      },
      (error: unknown) => this.session.reply(replyFrame(request.unique, this.tree.errno(error, node.path), 0)),
    );
  }

  /**
   * Hands the reader thread the block files bytes [from, to) of an immutable object came
   * from, so that later READs of them skip the main thread. Each block file is posted once:
   * a READ of a registered block that still reaches the main thread means the reader dropped
   * it (evicted, bad), and the refetched block's file, which has a new name, is posted then.
   */
  private registerBlocks(node: Node, info: ObjectInfo, from: number, to: number): void {
    if (!this.tree.immutable) return;
    const blockSize = this.reader.blockSizeBytes;
    for (let index = Math.floor(from / blockSize); index * blockSize < to; index++) {
      const location = this.reader.blockFile(info, index);
      // Registered already: the reader has it, or dropped it as bad or gone, and then only a refetch (a new file name) brings it back.
      if (!location || node.readerBlocks?.get(index) === location.path) continue;
      this.session.registerBlockFile(node.id, { size: info.size, blockSize }, index, location);
      (node.readerBlocks ??= new Map()).set(index, location.path);
    }
  }

  private release(unique: bigint, fh: bigint): void {
    const handle = this.handles.get(fh);
    this.handles.delete(fh);
    if (handle?.kind === "file") {
      if (handle.passthrough) {
        handle.node.passthroughOpens--;
        this.passthrough?.release(handle.passthrough);
        if (handle.node.passthroughOpens === 0) handle.node.passthroughInfo = undefined;
      } else handle.node.cachedOpens--;
    }
    this.session.reply(replyFrame(unique, 0, 0));
  }

  private async opendir(unique: bigint, id: bigint): Promise<Buffer> {
    const node = this.node(id);
    const fh = this.nextHandle++;
    this.handles.set(fh, { kind: "dir", node, listing: undefined });
    const frame = replyFrame(unique, 0, OPEN_OUT_BYTES);
    // An immutable tree's folders do not change: the kernel keeps each listing it read, and
    // later walks of it (another rank, another epoch) never reach the agent.
    openOut(frame, OUT_HEADER_BYTES, fh, this.tree.immutable ? OpenFlag.CACHE_DIR | OpenFlag.KEEP_CACHE : 0, 0);
    return frame;
  }

  /**
   * One READDIR, or READDIRPLUS (`plus`): entries from `offset` (an index: 0 ".", 1 "..",
   * then the folder's children) that fit `size`. READDIRPLUS gives each child's attributes
   * as a LOOKUP would (and counts as one), so a walk that stats every file sends no LOOKUP.
   */
  private async readdir(request: FuseRequest, plus: boolean): Promise<Buffer> {
    const fh = request.arg.readBigUInt64LE(0);
    const offset = Number(request.arg.readBigUInt64LE(8));
    const size = request.arg.readUInt32LE(16);
    const handle = this.handles.get(fh);
    if (!handle || handle.kind !== "dir") throw Errno.ENOENT;
    // The whole folder is listed once per opendir; later READDIRs page through that listing.
    handle.listing ??= this.tree.readdir(handle.node.path).then((entries) => [listed(".", "dir"), listed("..", "dir"), ...entries.map((e) => listed(e.name, e.kind))]);
    const entries = await handle.listing;
    // The entries are written into the reply frame itself, which is cut to what they fill.
    const frame = replyFrame(request.unique, 0, size);
    const body = frame.subarray(OUT_HEADER_BYTES);
    const ready: Array<Promise<void>> = [];
    let at = 0;
    for (let i = offset; i < entries.length; i++) {
      const entry = entries[i]!;
      const type = entry.kind === "dir" ? DT_DIR : DT_REG;
      if (at + (plus ? direntplusBytes(entry.name) : direntBytes(entry.name)) > size) break;
      const childPath = i < 2 ? undefined : handle.node.path === "/" ? `/${entry.text}` : `${handle.node.path}/${entry.text}`;
      if (!plus || !childPath) {
        const ino = i === 0 ? handle.node.id : childPath ? (this.inodes.idOf(childPath) ?? UNLOOKED_INO_BASE + BigInt(i)) : ROOT_ID;
        at = plus ? writeDirentplus(body, at, undefined, ino, i + 1, type, entry.name) : writeDirent(body, at, ino, i + 1, type, entry.name);
        continue;
      }
      // Just listed, so nearly always known without a wait (a READDIRPLUS of 1,000 entries would otherwise await 1,000 times).
      const attributes = this.tree.listedAttributes(childPath) ?? (await this.tree.getattr(childPath).catch(() => undefined));
      if (!attributes) {
        // Listed but not statable now (gone since the listing): listed only, the kernel looks it up if asked.
        at = writeDirentplus(body, at, undefined, UNLOOKED_INO_BASE + BigInt(i), i + 1, type, entry.name);
        continue;
      }
      const node = this.inodes.looked(childPath);
      const opens = this.readiness.forOpens(node, attributes, { listed: true });
      if (opens) ready.push(opens);
      at = writeDirentplus(body, at, { attr: this.attr(node, attributes), validSeconds: this.tree.kernelCacheSeconds }, node.id, i + 1, type, entry.name);
    }
    // As a LOOKUP does, a moment for the passthrough files of wholly cached files (once per reply, not per file).
    if (ready.length) await settledWithin(Promise.all(ready), LOOKUP_PIN_WAIT_MS);
    frame.writeUInt32LE(OUT_HEADER_BYTES + at, 0);
    return frame.subarray(0, OUT_HEADER_BYTES + at);
  }
}
