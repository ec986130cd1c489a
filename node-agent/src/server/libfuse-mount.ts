// The POSIX view over libfuse 2 (fuse-native): the front-end for agents that cannot mount
// by themselves (not root, or no /dev/fuse access to mount(2); see kernel-mount.ts for the
// default). The kernel caches attributes, entries and data (auto_cache drops a file's pages
// when its size or mtime change, i.e. when the object changed), so warm reads never reach
// this process. open() and close() are left to libfuse's C side: each one handled here
// would cost a hop to the JavaScript thread and halve small-file opens per second
// (measured: 5.9k → 11.1k files/s). For immutable datasets (`--metadata-ttl indefinite`)
// even libfuse's open is skipped: open answers ENOSYS once and the kernel then opens and
// closes files without asking (zero-message open, Linux ≥ 3.17), measured 2× files/s again;
// the cost is that the kernel keeps pages of a same-size rewrite, which is why only
// immutable data gets it. A stale mount left by a crashed agent is unmounted and reused
// (fuse-native's `force`).
import { createRequire } from "node:module";
import type { MountFactory, MountedView } from "../main.ts";
import { Errno, FileTree, type FileAttributes, type TreeInput } from "./file-tree.ts";

type Callback = (code: number, ...values: unknown[]) => void;

interface FuseInstance {
  mount(cb: (error: Error | null) => void): void;
  unmount(cb: (error: Error | null) => void): void;
}

type FuseModule = new (mountPoint: string, ops: Record<string, unknown>, options: Record<string, unknown>) => FuseInstance;

function fuseStat(a: FileAttributes) {
  return { mtime: a.mtime, atime: a.mtime, ctime: a.mtime, size: a.size, mode: a.mode, uid: 0, gid: 0, nlink: a.nlink };
}

export class LibfuseMount implements MountedView {
  private readonly fuse: FuseInstance;

  constructor(input: TreeInput & { mountPoint: string }) {
    const tree = new FileTree(input);
    const Fuse = createRequire(import.meta.url)("fuse-native") as FuseModule;
    const reply = (cb: Callback, work: () => Promise<unknown>) =>
      work().then(
        (value) => (value === undefined ? cb(0) : cb(0, value)),
        (error: unknown) => cb(tree.errno(error)),
      );
    const refuse = (...args: unknown[]) => (args.at(-1) as Callback)(Errno.EROFS);
    const ops = {
      getattr: (path: string, cb: Callback) => reply(cb, async () => fuseStat(await tree.getattr(path))),
      readdir: (path: string, cb: Callback) => reply(cb, async () => (await tree.readdir(path)).map((e) => e.name)),
      ...(tree.immutable ? { open: (_path: string, _flags: number, cb: Callback) => cb(Errno.ENOSYS) } : {}),
      read: (path: string, _fd: number, buffer: Buffer, length: number, position: number, cb: (bytes: number) => void) => {
        tree.read(path, buffer, length, position).then(cb, (error: unknown) => cb(tree.errno(error, path)));
      },
      statfs: (_path: string, cb: Callback) => cb(0, { bsize: 4096, frsize: 4096, blocks: 1e9, bfree: 0, bavail: 0, files: 1e6, ffree: 0, favail: 0, fsid: 0, flag: 1, namemax: 1024 }),
      create: refuse,
      write: refuse,
      truncate: refuse,
      unlink: refuse,
      mkdir: refuse,
      rmdir: refuse,
      rename: refuse,
      chmod: refuse,
      utimens: refuse,
    };
    this.fuse = new Fuse(input.mountPoint, ops, {
      force: true,
      mkdir: true,
      allowOther: true,
      autoCache: true,
      attrTimeout: tree.kernelCacheSeconds,
      entryTimeout: tree.kernelCacheSeconds,
      // fuse-native has no flag for a read-only mount; its options are joined with commas,
      // so "ro" rides along here. The kernel then refuses every write itself (EROFS) before
      // any request reaches this process; the write handlers above stay as a second line.
      fsname: "ferry,ro",
      subtype: "ferry",
      timeout: 120_000,
    });
  }

  async mount(): Promise<void> {
    await new Promise<void>((resolve, reject) => this.fuse.mount((error) => (error ? reject(error) : resolve())));
  }

  status(): Record<string, unknown> {
    return { driver: "libfuse", passthrough: null };
  }

  async unmount(): Promise<void> {
    await new Promise<void>((resolve, reject) => this.fuse.unmount((error) => (error ? reject(error) : resolve())));
  }
}

export const mountLibfuse: MountFactory = async (input) => {
  const view = new LibfuseMount(input);
  await view.mount();
  input.logger.info("mounted", { mountPoint: input.mountPoint, driver: "libfuse" });
  return view;
};
