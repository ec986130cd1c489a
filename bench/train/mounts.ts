// FUSE mount chores shared by the bench's mounted paths (agent, rclone, s3fs): is a
// directory mounted, wait until a mount shows a prefix, unmount lazily, and stop a child
// process for good. Every helper tolerates "already gone" so close() can run after errors.
import { execFile, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** The promise's value, or undefined after `ms`; the timer never outlives the race (it would hold the process open). */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** /proc/mounts escapes space, tab, newline and backslash as octal. */
function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Mount points currently listed in /proc/mounts. */
export function mountPoints(): string[] {
  try {
    return readFileSync("/proc/mounts", "utf8")
      .split("\n")
      .filter((line) => line.trim())
      .map((line) => unescapeMountPath(line.split(" ")[1] ?? ""));
  } catch {
    // No /proc (not Linux): nothing can be mounted by this bench either.
    return [];
  }
}

export function isMounted(dir: string): boolean {
  return mountPoints().includes(resolve(dir));
}

/** Lazy unmount (`fusermount -uz`), so a busy mount still goes away; true if nothing is mounted afterwards. */
export async function unmount(dir: string): Promise<boolean> {
  if (!isMounted(dir)) return true;
  for (const command of [["fusermount", "-uz", dir], ["fusermount3", "-uz", dir], ["umount", "-l", dir]]) {
    const [file = "", ...args] = command;
    await new Promise<void>((done) => execFile(file, args, () => done()));
    if (!isMounted(dir)) return true;
  }
  return !isMounted(dir);
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
export async function stopChild(child: ChildProcess | undefined, graceMs = 5000): Promise<void> {
  // No pid: it never started (spawn error), and no 'exit' will come.
  if (!child || child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * Polls until `dir` is a mount whose listing of `subdir` is not empty. Fails early when the
 * mounting process exits, with its output, so a refused mount says why.
 */
export async function waitForListing(options: { mount: string; subdir: string; child: ChildProcess; output: () => string; timeoutMs: number }): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError = "";
  while (Date.now() < deadline) {
    if (options.child.exitCode !== null || options.child.signalCode !== null) {
      throw new Error(`mount process exited (${options.child.exitCode ?? options.child.signalCode}): ${options.output().slice(-2000)}`);
    }
    if (isMounted(options.mount)) {
      // Async, raced with a timer: a hung FUSE listing must end in an error, not hang the bench.
      const listing = readdir(resolve(options.mount, options.subdir)).catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))));
      const entries = await within(listing, Math.max(1, deadline - Date.now()));
      if (entries === undefined) lastError = "listing timed out";
      else if (entries instanceof Error) lastError = entries.message;
      else if (entries.length > 0) return;
    }
    await sleep(200);
  }
  throw new Error(`mount did not show ${options.subdir} within ${options.timeoutMs} ms: ${options.mount} (${lastError}) ${options.output().slice(-2000)}`);
}
