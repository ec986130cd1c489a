// The source of the thread that reads /dev/fuse (run with `eval: true`, so it is plain
// JavaScript in a string), with the limits it is built with. What it answers by itself and
// why is said below; everything else it posts to the main thread (session.ts).
import { OpenFlag } from "./protocol.ts";

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
// The device is non-blocking and the reader spins on it for a moment after each request it
// answered itself before it sleeps in poll(): on a virtual machine a sleeping thread's
// wake-up costs about as much as the whole answer, and such requests (opens, releases, READs
// of cached blocks) come in quick runs. After a request handed to the main thread (a cold
// lookup or READ, answered milliseconds later) it does not spin: on a busy node that spin only
// takes CPU from the threads doing the work. ENODEV means the file system was unmounted;
// EINTR and ENOENT (a request aborted before it was read) are retried.
// Opens of inodes marked in the shared `slots` (small files of immutable datasets) are
// answered here, with their releases: each would otherwise cost two hops to the main thread,
// and small-file opens per second are what ImageFolder-style loaders live on (measured 11k →
// 25k files/s). A slot holds -1 (read through FUSE, keeping the kernel's pages: the data
// cannot change) or a passthrough backing id. The kernel lets an inode be open in one mode
// at a time, so the reader counts each inode's opens by mode and passes through only when no
// FUSE-read open is left (its count can only lag the kernel's, which errs on the safe side).
//
// In page-cache mode the first OPEN is declined (ENOSYS): from then on the kernel opens files
// by itself, keeps their pages across opens and sends no RELEASE, so a small file read
// again costs no request at all; only READs of pages not in memory come here.
//
// READs of blocks the main thread registered (immutable datasets, blocks whose checked
// headers it holds) are answered here too: pread of the chunks a READ spans from the block
// file, CRC32C of each against the registered table, one writev. On the main thread the same
// READ costs a hand-off, a thread-pool read and its completion, each a wake-up that a virtual
// machine charges tens of microseconds for (measured: ~450 µs of agent CPU per 128 KiB
// READ). Anything unexpected (no registration, a file evicted, a CRC mismatch, a short
// block) forwards the READ to the main thread, which has the whole read path, corruption
// handling included; a bad or missing block's registration is dropped here first.
export const READER_SOURCE = `
const { parentPort, workerData, receiveMessageOnPort } = require("node:worker_threads");
const fs = require("node:fs");
const { fd, bufferBytes, slotsBuffer, countersBuffer, stopBuffer, declineOpensBuffer, koffiPath, spinMs, crcPath, mailBuffer, port } = workerData;
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
const declineOpens = new Int32Array(declineOpensBuffer);
const ENOSYS = 38;
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
// Whether the last request was answered here (then the next is likely soon: spin for it).
let answeredHere = false;
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
      // Only this block: the main thread registers its refetched file (a new name) later.
      dropDescriptor(block.path);
      file.blocks.delete(index);
      registeredBlocks--;
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
function answer(bodyBytes, errno = 0) {
  reply.writeUInt32LE(16 + bodyBytes, 0);
  reply.writeInt32LE(-errno, 4);
  buf.copy(reply, 8, 8, 16); // unique
  write(fd, reply, 16 + bodyBytes);
}
for (;;) {
  const n = read(fd, buf, buf.length);
  if (n < 0) {
    const errno = koffi.errno();
    if (errno === EAGAIN) {
      // Sleeps at most a second, so that a stop is seen even while a detached mount lives on.
      if ((!answeredHere || performance.now() - lastRequest > spinMs) && poll(pollFd, 1, 1000) === 0 && Atomics.load(stop, 0) !== 0) break;
      continue;
    }
    if (errno === EINTR || errno === ENOENT) continue;
    parentPort.postMessage({ closed: errno });
    break;
  }
  lastRequest = performance.now();
  answeredHere = true;
  if (Atomics.load(mail, 0) !== 0) takeMail();
  const opcode = buf.readUInt32LE(4);
  if (opcode === 15 /* READ */) {
    if (serveRead()) continue;
  } else if (opcode === 14 /* OPEN */) {
    if (Atomics.load(declineOpens, 0) !== 0) {
      // Page-cache mode: the kernel takes ENOSYS as "never ask again" and opens by itself.
      counters[4]++;
      answer(0, ENOSYS);
      continue;
    }
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
  answeredHere = false;
  const copy = new Uint8Array(n);
  copy.set(buf.subarray(0, n));
  parentPort.postMessage(copy, [copy.buffer]);
}
`;

/** How long the reader spins on an empty device after a request before it sleeps. */
export const SPIN_MS = 0.2;
