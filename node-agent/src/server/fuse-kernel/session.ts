// One FUSE connection spoken directly over /dev/fuse (no libfuse): mounts it, answers INIT,
// reads requests on a worker thread and hands them to the file system, writes replies, and
// registers passthrough backing files. Reading on a dedicated worker keeps a blocking read()
// off libuv's small thread pool, which the block cache needs for its own file I/O.
import { closeSync, constants as fsConstants, mkdirSync, openSync, readFileSync, writeFileSync, writeSync, writevSync } from "node:fs";
import { resolve } from "node:path";
import { createRequire } from "node:module";
import { constants } from "node:os";
import { MessageChannel, type MessagePort, Worker } from "node:worker_threads";
import type { BlockFileLocation } from "../../cache/block-cache.ts";
import type { Logger } from "../../log.ts";
import { libc, MNT_DETACH, MS_NODEV, MS_NOSUID, MS_RDONLY, SyscallError } from "../../libc.ts";
import { FUSE_DEV_IOC_BACKING_CLOSE, FUSE_DEV_IOC_BACKING_OPEN, IN_HEADER_BYTES, Init, INIT_OUT_BYTES, initOut, Op, OUT_HEADER_BYTES, readHeader, readInitIn, replyFrame } from "./protocol.ts";
import { READER_SOURCE, SPIN_MS } from "./reader-thread.ts";

export interface FuseRequest {
  opcode: number;
  unique: bigint;
  nodeid: bigint;
  /** The request's argument bytes (this request's own copy). */
  arg: Buffer;
}

export interface SessionOptions {
  mountPoint: string;
  logger: Logger;
  /** Ask the kernel for passthrough opens (Linux ≥ 6.9, root). */
  passthrough: boolean;
  /** Let the kernel open files without asking (page-cache mode): the first OPEN is declined with ENOSYS. */
  kernelOpens: boolean;
  onRequest(request: FuseRequest): void;
}

/**
 * Largest write the kernel may send. The file system is read-only, but Linux sizes the page
 * cache's folios for a FUSE file from min(max_write, max_read, max_pages): 1 MiB lets them grow.
 */
const MAX_WRITE = 1024 * 1024;
/** read() of /dev/fuse needs room for one whole request (header + write_in + max_write). */
const READ_BUFFER_BYTES = MAX_WRITE + 4096 + 128;
/** Reads up to 1 MiB per request (FUSE_MAX_PAGES). */
const MAX_PAGES = 256;
/** Sequential read-ahead: one largest READ. */
const READAHEAD_KIB = (MAX_PAGES * 4096) / 1024;

/** Inodes below this number can be marked for opens answered on the reader thread (4 bytes each, committed only where used). */
const FAST_OPEN_LIMIT = 1 << 22;

/** FUSE mounts in this mount namespace: mount point and device ("0:38"). */
function fuseMounts(): Array<{ point: string; device: string }> {
  const mounts: Array<{ point: string; device: string }> = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const [left, right] = line.split(" - ");
    if (!left || !right || !right.startsWith("fuse")) continue;
    const fields = left.split(" ");
    const point = fields[4];
    if (point && fields[2]) mounts.push({ point: point.replace(/\\(\d{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))), device: fields[2] });
  }
  return mounts;
}

/**
 * Sets the kernel's read-ahead for the mount to the largest READ it allows. The default
 * (128 KiB) splits a cold 1.25 MB file into 10 READs, each a trip to the agent; at 1 MiB it
 * is 2. Random small reads are not inflated: the kernel reads ahead only for sequential
 * ones. Through sysfs, by the device from mountinfo: a stat of the mount point would ask
 * this very process. Best effort (a read-only /sys leaves the default).
 */
function widenReadahead(mountPoint: string, logger: Logger): void {
  const device = fuseMounts().find((m) => m.point === mountPoint)?.device;
  try {
    if (!device) throw new Error("not in /proc/self/mountinfo");
    writeFileSync(`/sys/class/bdi/${device}/read_ahead_kb`, String(READAHEAD_KIB));
  } catch (error) {
    logger.debug("mount read-ahead left at the kernel's default", { mountPoint, error: error instanceof Error ? error.message : String(error) });
  }
}

export class KernelSession {
  private readonly fd: number;
  private readonly options: SessionOptions;
  private reader: Worker | undefined;
  /** Per inode: 0, or -1 / a backing id for opens the reader answers (see READER_SOURCE). */
  private readonly slots = new Int32Array(new SharedArrayBuffer(FAST_OPEN_LIMIT * 4));
  /** Opens the reader answered, how many of them as passthrough, READs it answered and their bytes, opens it declined. */
  private readonly counters = new Float64Array(new SharedArrayBuffer(40));
  /** Block registrations for the reader (see READER_SOURCE), and the flag that says some wait. */
  private readonly mailbox: MessagePort;
  private readonly readerPort: MessagePort;
  private readonly mail = new Int32Array(new SharedArrayBuffer(4));
  /** 1 when opens are left to the kernel (set at INIT, before the first OPEN can come). */
  private readonly declineOpens = new Int32Array(new SharedArrayBuffer(4));
  /** Set to 1 to stop the reader (it checks when idle). */
  private readonly stopReader = new Int32Array(new SharedArrayBuffer(4));
  private closed = false;
  /** True when INIT agreed on passthrough opens. */
  passthrough = false;
  /** True when the kernel opens files by itself (it supports no-open and page-cache mode asked for it). */
  kernelOpens = false;
  private initDone!: (error?: Error) => void;
  private readonly initialized = new Promise<void>((resolve, reject) => {
    this.initDone = (error) => (error ? reject(error) : resolve());
  });

  private constructor(fd: number, options: SessionOptions) {
    this.fd = fd;
    this.options = options;
    const channel = new MessageChannel();
    this.mailbox = channel.port1;
    this.readerPort = channel.port2;
  }

  /**
   * Mounts a new connection at `mountPoint` (a stale mount a crashed agent left there is
   * detached first) and waits for the kernel's INIT. Needs CAP_SYS_ADMIN.
   */
  static async mount(input: SessionOptions): Promise<KernelSession> {
    const options = { ...input, mountPoint: resolve(input.mountPoint) };
    const sys = libc();
    if (fuseMounts().some((m) => m.point === options.mountPoint)) {
      // "Transport endpoint is not connected" after a crash, or another agent's live mount.
      options.logger.warn("detaching the FUSE mount already at the mount point", { mountPoint: options.mountPoint });
      sys.umount2(options.mountPoint, MNT_DETACH);
    }
    mkdirSync(options.mountPoint, { recursive: true });
    // Non-blocking: the reader thread polls it (see READER_SOURCE).
    const fd = openSync("/dev/fuse", fsConstants.O_RDWR | fsConstants.O_NONBLOCK);
    const session = new KernelSession(fd, options);
    try {
      sys.mount("ferry", options.mountPoint, "fuse.ferry", MS_RDONLY | MS_NOSUID | MS_NODEV, `fd=${fd},rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions`);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    session.startReader();
    // The kernel sends INIT as soon as the mount exists; a reader that never sees it (koffi
    // failing to load in the thread, say) must not leave a dead mount that hangs its users.
    const timer = setTimeout(() => session.initDone(new Error("the kernel's FUSE INIT did not arrive within 10 s")), 10_000);
    try {
      await session.initialized;
    } catch (error) {
      await session.unmount().catch(() => undefined);
      throw error;
    } finally {
      clearTimeout(timer);
    }
    widenReadahead(options.mountPoint, options.logger);
    return session;
  }

  private startReader(): void {
    const require = createRequire(import.meta.url);
    const workerData = {
      fd: this.fd,
      bufferBytes: READ_BUFFER_BYTES,
      slotsBuffer: this.slots.buffer,
      countersBuffer: this.counters.buffer,
      stopBuffer: this.stopReader.buffer,
      declineOpensBuffer: this.declineOpens.buffer,
      koffiPath: require.resolve("koffi"),
      crcPath: require.resolve("@node-rs/crc32"),
      spinMs: SPIN_MS,
      mailBuffer: this.mail.buffer,
      port: this.readerPort,
    };
    const reader = new Worker(READER_SOURCE, { eval: true, workerData, transferList: [this.readerPort] });
    reader.unref();
    reader.on("message", (message: Uint8Array | { closed: number }) => {
      if (message instanceof Uint8Array) this.dispatch(Buffer.from(message.buffer, message.byteOffset, message.byteLength));
      else this.onClosed(message.closed);
    });
    // A reader that dies leaves requests unanswered: detach the mount so that its users get an
    // error (ENOTCONN) instead of hanging.
    reader.on("error", (error) => {
      this.options.logger.error("fuse reader failed; detaching the mount", { error: error.message });
      this.initDone(error);
      if (!this.closed) this.unmount().catch(() => undefined);
    });
    this.reader = reader;
  }

  private onClosed(errno: number): void {
    const code = Object.entries(constants.errno).find(([, n]) => n === errno)?.[0] ?? String(errno);
    if (!this.closed) this.options.logger.warn("fuse connection closed", { code });
    this.closed = true;
    this.initDone(new Error(`the FUSE connection closed before INIT (${code})`));
  }

  private dispatch(frame: Buffer): void {
    const header = readHeader(frame);
    const arg = frame.subarray(IN_HEADER_BYTES, header.len);
    switch (header.opcode) {
      case Op.INIT:
        return this.init(header.unique, arg);
      case Op.INTERRUPT:
        return; // every request here is answered promptly; nothing to abort
      case Op.DESTROY:
        return this.reply(replyFrame(header.unique, 0, 0));
      default:
        this.options.onRequest({ opcode: header.opcode, unique: header.unique, nodeid: header.nodeid, arg });
    }
  }

  private init(unique: bigint, arg: Buffer): void {
    const kernel = readInitIn(arg);
    if (kernel.major !== 7) {
      this.reply(replyFrame(unique, -71 /* EPROTO */, 0));
      this.initDone(new Error(`the kernel speaks FUSE ${kernel.major}.${kernel.minor}, not 7.x`));
      return;
    }
    const wanted = Init.ASYNC_READ | Init.PARALLEL_DIROPS | Init.MAX_PAGES | Init.INIT_EXT | Init.DO_READDIRPLUS;
    const flags2 = this.options.passthrough ? kernel.flags2 & Init.PASSTHROUGH_2 : 0;
    this.passthrough = flags2 !== 0;
    this.kernelOpens = this.options.kernelOpens && (kernel.flags & Init.NO_OPEN_SUPPORT) !== 0;
    if (this.options.kernelOpens && !this.kernelOpens) this.options.logger.warn("this kernel cannot open FUSE files by itself; every open asks the agent", { mountPoint: this.options.mountPoint });
    Atomics.store(this.declineOpens, 0, this.kernelOpens ? 1 : 0);
    const frame = replyFrame(unique, 0, INIT_OUT_BYTES);
    initOut(frame, OUT_HEADER_BYTES, {
      minor: Math.min(kernel.minor, 40),
      maxReadahead: kernel.maxReadahead,
      flags: kernel.flags & wanted,
      flags2,
      maxWrite: MAX_WRITE,
      maxPages: MAX_PAGES,
      // Backing files sit on a plain file system (depth 0): one level of stacking is enough.
      maxStackDepth: this.passthrough ? 1 : 0,
    });
    this.reply(frame);
    this.options.logger.info("fuse connection ready", { protocol: `7.${Math.min(kernel.minor, 40)}`, passthrough: this.passthrough, kernelOpens: this.kernelOpens });
    this.initDone();
  }

  /**
   * Lets the reader thread answer opens of inode `node` from now on (read-only, keeping the
   * kernel's pages, file handles with bit 62 set that never reach onRequest, nor do their releases).
   * Only for data that cannot change while the inode lives.
   */
  markFastOpen(node: bigint): boolean {
    if (node >= BigInt(FAST_OPEN_LIMIT)) return false;
    Atomics.compareExchange(this.slots, Number(node), 0, -1);
    return true;
  }

  /** From now on the reader opens inode `node` (marked fast) as a passthrough file on backing `id`. */
  setFastBacking(node: bigint, id: number): void {
    if (node < BigInt(FAST_OPEN_LIMIT)) Atomics.store(this.slots, Number(node), id);
  }

  /** Ends fast opens of `node` (the kernel forgot it, so it has no open files). */
  unmarkFastOpen(node: bigint): void {
    if (node < BigInt(FAST_OPEN_LIMIT)) Atomics.store(this.slots, Number(node), 0);
  }

  /** Opens the reader thread answered by itself, how many of them as passthrough, and how many it declined (left to the kernel). */
  get fastOpens(): { opens: number; passthrough: number; declined: number } {
    return { opens: this.counters[0] ?? 0, passthrough: this.counters[1] ?? 0, declined: this.counters[4] ?? 0 };
  }

  /** READs the reader thread answered from registered block files, and their bytes. */
  get readerReads(): { reads: number; bytes: number } {
    return { reads: this.counters[2] ?? 0, bytes: this.counters[3] ?? 0 };
  }

  /**
   * Lets the reader thread answer READs of inode `node` that fall in block `index` (of
   * `blockSize` bytes; the object has `size`) straight from the block file. Only for data
   * that cannot change while the inode lives; the reader checks every chunk it reads.
   */
  registerBlockFile(node: bigint, file: { size: number; blockSize: number }, index: number, location: BlockFileLocation): void {
    if (node >= 2n ** 32n || this.closed) return;
    this.mailbox.postMessage({ node: Number(node), size: file.size, blockSize: file.blockSize, index, location });
    Atomics.store(this.mail, 0, 1);
  }

  /** Drops the reader's registrations for `node` (forgotten by the kernel). */
  forgetBlockFiles(node: bigint): void {
    if (node >= 2n ** 32n || this.closed) return;
    this.mailbox.postMessage({ forget: Number(node) });
    Atomics.store(this.mail, 0, 1);
  }

  /** Writes one reply frame (see replyFrame), or its parts in one writev. A request the kernel already dropped (ENOENT) is ignored. */
  reply(frame: Buffer | Uint8Array[]): void {
    if (this.closed) return;
    try {
      if (Array.isArray(frame)) writevSync(this.fd, frame);
      else writeSync(this.fd, frame);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code === "ENODEV") {
        this.closed = true;
        return;
      }
      this.options.logger.warn("fuse reply failed", { code });
    }
  }

  /** Replies `unique` with `chunks` as its body, gathered by one writev (no copy into a frame). */
  replyData(unique: bigint, chunks: Uint8Array[]): void {
    const header = replyFrame(unique, 0, 0);
    header.writeUInt32LE(OUT_HEADER_BYTES + chunks.reduce((n, c) => n + c.length, 0), 0);
    this.reply([header, ...chunks]);
  }

  /** Registers an open file as a passthrough backing file; the id goes into open replies. */
  openBacking(fileFd: number): number {
    const map = Buffer.alloc(16);
    map.writeInt32LE(fileFd, 0);
    return libc().ioctl(this.fd, FUSE_DEV_IOC_BACKING_OPEN, map);
  }

  /** Drops a backing id (files already open on it keep reading it). */
  closeBacking(id: number): void {
    if (this.closed) return;
    const arg = Buffer.alloc(4);
    arg.writeUInt32LE(id, 0);
    try {
      libc().ioctl(this.fd, FUSE_DEV_IOC_BACKING_CLOSE, arg);
    } catch (error) {
      this.options.logger.warn("closing a passthrough backing file failed", { error: error instanceof Error ? error.message : String(error) });
    }
  }

  /** Unmounts (lazily if busy, so a stopping agent never hangs on an open file) and closes the connection. */
  async unmount(): Promise<void> {
    const sys = libc();
    try {
      sys.umount2(this.options.mountPoint, 0);
    } catch (error) {
      if (!(error instanceof SyscallError)) throw error;
      if (error.code === "EBUSY") sys.umount2(this.options.mountPoint, MNT_DETACH);
      else if (error.code !== "EINVAL" && error.code !== "ENOENT") throw error;
    }
    this.closed = true;
    this.mailbox.close();
    // The reader leaves its loop on ENODEV (unmounted) or, for a mount detached while files are
    // open, within a second of this flag (a thread blocked in poll() cannot be terminated).
    Atomics.store(this.stopReader, 0, 1);
    await new Promise<void>((resolve) => {
      if (!this.reader || this.reader.threadId < 0) return resolve();
      this.reader.once("exit", () => resolve());
      setTimeout(resolve, 3000).unref();
    });
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }
}
