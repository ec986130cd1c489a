// The system calls Node has no API for, through koffi (an FFI with prebuilt binaries inside
// its npm package): mount(2) and umount2(2), so the agent mounts its own /dev/fuse
// connection without libfuse or fusermount; ioctl(2), which registers passthrough backing
// files with that connection; fsetxattr(2) and getxattr(2), which keep the header of a
// whole-object cache file beside its data (see block-format.ts). Loaded lazily: a machine
// without koffi's binary, or without root, falls back to the libfuse front-end and to
// block files only.
import { constants } from "node:os";
import { createRequire } from "node:module";

export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MNT_DETACH = 2;

export interface Libc {
  mount(source: string, target: string, type: string, flags: number, data: string): void;
  umount2(target: string, flags: number): void;
  /** ioctl with an in/out argument buffer; returns the (non-negative) result. */
  ioctl(fd: number, request: number, arg: Buffer): number;
  /** Sets extended attribute `name` of an open file to `value` (flags 0: create or replace). */
  fsetxattr(fd: number, name: string, value: Buffer, flags: number): void;
  /** Reads extended attribute `name` of a file into `into`; returns its length (ERANGE if `into` is too small, ENODATA if absent). */
  getxattr(path: string, name: string, into: Buffer): number;
}

/** A failed system call, with errno's name (EBUSY, EPERM, …). */
export class SyscallError extends Error {
  override readonly name = "SyscallError";
  readonly syscall: string;
  /** errno's name, e.g. "EBUSY" ("" if unknown). */
  readonly code: string;

  constructor(syscall: string, errno: number) {
    const code = Object.entries(constants.errno).find(([, n]) => n === errno)?.[0] ?? "";
    super(`${syscall} failed: ${code || `errno ${errno}`}`);
    this.syscall = syscall;
    this.code = code;
  }
}

let loaded: Libc | undefined;

export function libc(): Libc {
  if (loaded) return loaded;
  type Koffi = {
    load(name: string): { func(signature: string): (...args: unknown[]) => number };
    errno(): number;
  };
  const koffi = createRequire(import.meta.url)("koffi") as Koffi;
  const lib = koffi.load("libc.so.6");
  const mount = lib.func("int mount(const char *source, const char *target, const char *type, unsigned long flags, const char *data)");
  const umount2 = lib.func("int umount2(const char *target, int flags)");
  const ioctl = lib.func("int ioctl(int fd, unsigned long request, _Inout_ uint8_t *arg)");
  const fsetxattr = lib.func("int fsetxattr(int fd, const char *name, const uint8_t *value, size_t size, int flags)");
  const getxattr = lib.func("long getxattr(const char *path, const char *name, _Inout_ uint8_t *value, size_t size)");
  const check = (syscall: string, result: number) => {
    if (result < 0) throw new SyscallError(syscall, koffi.errno());
    return result;
  };
  loaded = {
    mount: (source, target, type, flags, data) => void check("mount", mount(source, target, type, flags, data)),
    umount2: (target, flags) => void check("umount2", umount2(target, flags)),
    ioctl: (fd, request, arg) => check("ioctl", ioctl(fd, request, arg)),
    fsetxattr: (fd, name, value, flags) => void check("fsetxattr", fsetxattr(fd, name, value, value.length, flags)),
    getxattr: (path, name, into) => check("getxattr", getxattr(path, name, into, into.length)),
  };
  return loaded;
}
