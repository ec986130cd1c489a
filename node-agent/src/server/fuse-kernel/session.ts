// One FUSE connection spoken directly over /dev/fuse (no libfuse): mounts it, answers INIT,
// reads requests on a worker thread and hands them to the file system, writes replies, and
// registers passthrough backing files. Reading on a dedicated worker keeps a blocking read()
// off libuv's small thread pool, which the block cache needs for its own file I/O.
import { closeSync, constants as fsConstants, mkdirSync, openSync, readFileSync, writeSync, writevSync } from "node:fs";
import { resolve } from "node:path";
import { createRequire } from "node:module";
import { constants } from "node:os";
import { MessageChannel, type MessagePort, Worker } from "node:worker_threads";
import type { BlockFileLocation } from "../../cache/block-cache.ts";
import type { Logger } from "../../log.ts";
import { libc, MNT_DETACH, MS_NODEV, MS_NOSUID, MS_RDONLY, SyscallError } from "./libc.ts";
import { FUSE_DEV_IOC_BACKING_CLOSE, FUSE_DEV_IOC_BACKING_OPEN, IN_HEADER_BYTES, Init, INIT_OUT_BYTES, initOut, Op, OpenFlag, OUT_HEADER_BYTES, readHeader, readInitIn, replyFrame } from "./protocol.ts";

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

/** Block registrations the reader keeps (~0.5 KiB each for 4 MiB blocks); all are dropped when full, and come back as READs are served. */
const MAX_REGISTERED_BLOCKS = 65536;
/**
 * Block files the reader keeps open. An evicted block stays readable (its bytes are still
 * right: the identity includes the ETag) until its descriptor leaves this LRU, so this also
 * bounds the disk space evicted files can hold: 64 × 4 MiB.
 */
const READER_DESCRIPTORS = 64;
/** Room for one READ's chunks (1 MiB plus chunk rounding at both ends of each block); a READ needing more goes to the main thread. */
const READER_SCRATCH_BYTES = 4 * 1024 * 1024;

// The reader thread: read()s of /dev/fuse, one request each, posted to the main thread.
// The device is non-blocking and the reader spins on it for a moment after each request
// before it sleeps in poll(): on a virtual machine a sleeping thread's wake-up costs about
// as much as the whole answer. ENODEV means the file system was unmounted; EINTR and
// ENOENT (a request aborted before it was read) are retried.
// Opens of inodes marked in the shared `slots` (small files of immutable datasets) are
// answered here, with their releases: each would otherwise cost two hops to the main thread,
// and small-file opens per second are what ImageFolder-style loaders live on (measured 11k →
// 25k files/s). A slot holds -1 (read through FUSE, keeping the kernel's pages: the data
// cannot change) or a passthrough backing id. The kernel lets an inode be open in one mode
// at a time, so the reader counts each inode's opens by mode and passes through only when no
// FUSE-read open is left (its count can only lag the kernel's, which errs on the safe side).
//
// READs of blocks the main thread registered (immutable datasets, blocks whose checked
// headers it holds) are answered here too: pread of the chunks a READ spans from the block
// file, CRC32C of each against the registered table, one writev. On the main thread the same
// READ costs a hand-off, a thread-pool read and its completion, each a wake-up that a virtual
// machine charges tens of microseconds for (measured: ~450 µs of agent CPU per 128 KiB
// READ). Anything unexpected (no registration, a file evicted, a CRC mismatch, a short
// block) forwards the READ to the main thread, which has the whole read path, corruption
// handling included; a bad or missing block's registration is dropped here first.
const READER_SOURCE = `
const { parentPort, workerData, receiveMessageOnPort } = require("node:worker_threads");
const fs = require("node:fs");
const { fd, bufferBytes, slotsBuffer, countersBuffer, stopBuffer, koffiPath, spinMs, crcPath, mailBuffer, port } = workerData;
const { crc32c } = require(crcPath);
const koffi = require(koffiPath);
const libc = koffi.load("libc.so.6");
const read = libc.func("long read(int fd, _Out_ uint8_t *buf, unsigned long count)");
const write = libc.func("long write(int fd, const uint8_t *buf, unsigned long count)");
const poll = libc.func("int poll(_Inout_ uint8_t *fds, unsigned long nfds, int timeout)");
const EINTR = 4, EAGAIN = 11, ENOENT = 2;
const slots = new Int32Array(slotsBuffer);
const counters = new Float64Array(countersBuffer);
const stop = new Int32Array(stopBuffer);
const buf = Buffer.allocUnsafe(bufferBytes);
const reply = Buffer.alloc(32);
const pollFd = Buffer.alloc(8);
pollFd.writeInt32LE(fd, 0);
pollFd.writeInt16LE(1 /* POLLIN */, 4);
// Handles of reader-answered opens: bit 62 set (bit 61 too for passthrough ones), so their
// high 32-bit word carries 0x40000000 / 0x20000000. Fields are read as 32-bit halves: no BigInts.
const FAST_HIGH = 0x40000000, PASSTHROUGH_HIGH = 0x20000000;
let nextFh = 0;
const opens = new Map();
let lastRequest = 0;
const mail = new Int32Array(mailBuffer);
// Registered block files by inode (low word of the nodeid): { size, blockSize, blocks: Map(index → location) }.
const files = new Map();
let registeredBlocks = 0;
const MAX_REGISTERED_BLOCKS = ${MAX_REGISTERED_BLOCKS};
const descriptors = new Map();
const MAX_DESCRIPTORS = ${READER_DESCRIPTORS};
let scratch = Buffer.allocUnsafe(${READER_SCRATCH_BYTES});
const readHeader = Buffer.alloc(16);
function takeMail() {
  Atomics.store(mail, 0, 0);
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
    const msg = m.message;
    if (msg.forget !== undefined) {
      const file = files.get(msg.forget);
      if (file) registeredBlocks -= file.blocks.size;
      files.delete(msg.forget);
      continue;
    }
    if (registeredBlocks >= MAX_REGISTERED_BLOCKS) {
      files.clear();
      registeredBlocks = 0;
    }
    let file = files.get(msg.node);
    if (file === undefined || file.size !== msg.size || file.blockSize !== msg.blockSize) {
      if (file) registeredBlocks -= file.blocks.size;
      files.set(msg.node, (file = { size: msg.size, blockSize: msg.blockSize, blocks: new Map() }));
    }
    if (!file.blocks.has(msg.index)) registeredBlocks++;
    file.blocks.set(msg.index, msg.location);
  }
}
function descriptor(path) {
  let d = descriptors.get(path);
  if (d !== undefined) {
    descriptors.delete(path);
    descriptors.set(path, d);
    return d;
  }
  try {
    d = fs.openSync(path, "r");
  } catch {
    return -1;
  }
  descriptors.set(path, d);
  if (descriptors.size > MAX_DESCRIPTORS) {
    const [oldPath, oldFd] = descriptors.entries().next().value;
    descriptors.delete(oldPath);
    fs.closeSync(oldFd);
  }
  return d;
}
function dropDescriptor(path) {
  const d = descriptors.get(path);
  if (d === undefined) return;
  descriptors.delete(path);
  try { fs.closeSync(d); } catch {}
}
// True when the READ in buf was answered; false hands it to the main thread.
function serveRead() {
  if (buf.readUInt32LE(20) !== 0) return false;
  const node = buf.readUInt32LE(16);
  const file = files.get(node);
  if (file === undefined) return false;
  const offset = buf.readUInt32LE(48) + buf.readUInt32LE(52) * 4294967296;
  const end = Math.min(file.size, offset + buf.readUInt32LE(56));
  const parts = [];
  let used = 0;
  let total = 0;
  for (let at = offset; at < end; ) {
    const index = Math.floor(at / file.blockSize);
    const block = file.blocks.get(index);
    if (block === undefined) return false;
    const from = at - index * file.blockSize;
    const to = Math.min(end - index * file.blockSize, block.dataLength);
    if (to <= from) return false;
    const first = Math.floor(from / block.chunkBytes);
    const pieceStart = first * block.chunkBytes;
    const bytes = Math.min(block.dataLength, Math.ceil(to / block.chunkBytes) * block.chunkBytes) - pieceStart;
    if (used + bytes > scratch.length) return false;
    const d = descriptor(block.path);
    let got = 0;
    try {
      while (d >= 0 && got < bytes) {
        const r = fs.readSync(d, scratch, used + got, bytes - got, block.dataOffset + pieceStart + got);
        if (r === 0) break;
        got += r;
      }
    } catch {
      got = -1;
    }
    let intact = got === bytes;
    for (let c = 0; intact && c * block.chunkBytes < bytes; c++) {
      const s = used + c * block.chunkBytes;
      intact = crc32c(scratch.subarray(s, Math.min(used + bytes, s + block.chunkBytes))) === block.crcs[first + c];
    }
    if (!intact) {
      dropDescriptor(block.path);
      registeredBlocks -= file.blocks.size;
      files.delete(node);
      return false;
    }
    parts.push(scratch.subarray(used + from - pieceStart, used + to - pieceStart));
    total += to - from;
    used += bytes;
    at = index * file.blockSize + to;
  }
  readHeader.writeUInt32LE(16 + total, 0);
  readHeader.writeInt32LE(0, 4);
  buf.copy(readHeader, 8, 8, 16);
  try {
    fs.writevSync(fd, [readHeader, ...parts]);
  } catch {
    // ENOENT: the request was interrupted; ENODEV: unmounted (the next read() says so).
  }
  counters[2]++;
  counters[3] += total;
  return true;
}
function answer(bodyBytes) {
  reply.writeUInt32LE(16 + bodyBytes, 0);
  reply.writeInt32LE(0, 4);
  buf.copy(reply, 8, 8, 16); // unique
  write(fd, reply, 16 + bodyBytes);
}
for (;;) {
  const n = read(fd, buf, buf.length);
  if (n < 0) {
    const errno = koffi.errno();
    if (errno === EAGAIN) {
      // Sleeps at most a second, so that a stop is seen even while a detached mount lives on.
      if (performance.now() - lastRequest > spinMs && poll(pollFd, 1, 1000) === 0 && Atomics.load(stop, 0) !== 0) break;
      continue;
    }
    if (errno === EINTR || errno === ENOENT) continue;
    parentPort.postMessage({ closed: errno });
    break;
  }
  lastRequest = performance.now();
  if (Atomics.load(mail, 0) !== 0) takeMail();
  const opcode = buf.readUInt32LE(4);
  if (opcode === 15 /* READ */) {
    if (serveRead()) continue;
  } else if (opcode === 14 /* OPEN */) {
    const node = buf.readUInt32LE(20) === 0 ? buf.readUInt32LE(16) : slots.length;
    const slot = node < slots.length ? Atomics.load(slots, node) : 0;
    if (slot !== 0 && (buf.readUInt32LE(40) & 3) === 0) {
      let count = opens.get(node);
      if (count === undefined) opens.set(node, (count = { cached: 0, passthrough: 0 }));
      nextFh = (nextFh + 1) >>> 0;
      reply.writeUInt32LE(nextFh, 16);
      if (slot > 0 && count.cached === 0) {
        count.passthrough++;
        counters[1]++;
        reply.writeUInt32LE(FAST_HIGH | PASSTHROUGH_HIGH, 20);
        reply.writeUInt32LE(${OpenFlag.PASSTHROUGH | OpenFlag.NOFLUSH}, 24);
        reply.writeInt32LE(slot, 28);
      } else {
        count.cached++;
        reply.writeUInt32LE(FAST_HIGH, 20);
        reply.writeUInt32LE(${OpenFlag.KEEP_CACHE | OpenFlag.NOFLUSH}, 24);
        reply.writeInt32LE(0, 28);
      }
      counters[0]++;
      answer(16);
      continue;
    }
  } else if (opcode === 18 /* RELEASE */) {
    const high = buf.readUInt32LE(44);
    if (high & FAST_HIGH) {
      const node = buf.readUInt32LE(16);
      const count = opens.get(node);
      if (count) {
        if (high & PASSTHROUGH_HIGH) count.passthrough--;
        else count.cached--;
        if (count.cached <= 0 && count.passthrough <= 0) opens.delete(node);
      }
      answer(0);
      continue;
    }
  }
  const copy = new Uint8Array(n);
  copy.set(buf.subarray(0, n));
  parentPort.postMessage(copy, [copy.buffer]);
}
`;

/** How long the reader spins on an empty device after a request before it sleeps. */
const SPIN_MS = 0.2;

/** Inodes below this number can be marked for opens answered on the reader thread (4 bytes each, committed only where used). */
const FAST_OPEN_LIMIT = 1 << 22;

/** Mount points in this mount namespace whose file system type is FUSE. */
function fuseMountPoints(): string[] {
  const points: string[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const [left, right] = line.split(" - ");
    if (!left || !right || !right.startsWith("fuse")) continue;
    const point = left.split(" ")[4];
    if (point) points.push(point.replace(/\\(\d{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))));
  }
  return points;
}

export class KernelSession {
  private readonly fd: number;
  private readonly options: SessionOptions;
  private reader: Worker | undefined;
  /** Per inode: 0, or -1 / a backing id for opens the reader answers (see READER_SOURCE). */
  private readonly slots = new Int32Array(new SharedArrayBuffer(FAST_OPEN_LIMIT * 4));
  /** Opens the reader answered, how many of them as passthrough, READs it answered and their bytes. */
  private readonly counters = new Float64Array(new SharedArrayBuffer(32));
  /** Block registrations for the reader (see READER_SOURCE), and the flag that says some wait. */
  private readonly mailbox: MessagePort;
  private readonly readerPort: MessagePort;
  private readonly mail = new Int32Array(new SharedArrayBuffer(4));
  /** Set to 1 to stop the reader (it checks when idle). */
  private readonly stopReader = new Int32Array(new SharedArrayBuffer(4));
  private closed = false;
  /** True when INIT agreed on passthrough opens. */
  passthrough = false;
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
    if (fuseMountPoints().includes(options.mountPoint)) {
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
    const wanted = Init.ASYNC_READ | Init.PARALLEL_DIROPS | Init.MAX_PAGES | Init.INIT_EXT;
    const flags2 = this.options.passthrough ? kernel.flags2 & Init.PASSTHROUGH_2 : 0;
    this.passthrough = flags2 !== 0;
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
    this.options.logger.info("fuse connection ready", { protocol: `7.${Math.min(kernel.minor, 40)}`, passthrough: this.passthrough });
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

  /** Opens the reader thread answered by itself, and how many of them as passthrough. */
  get fastOpens(): { opens: number; passthrough: number } {
    return { opens: this.counters[0] ?? 0, passthrough: this.counters[1] ?? 0 };
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
