// A local folder as a source (file:///dir): keys are paths relative to it with "/".
// The version is size and mtime (listing reads no bytes); reads check that neither
// changed from open to end, so a file rewritten mid-copy is retried, never half-copied.
import { createReadStream, statSync } from "node:fs";
import { lstat, opendir, stat } from "node:fs/promises";
import { join } from "node:path";
import { InputError, SourceChangedError } from "../errors.ts";
import type { Hashes } from "../copy/hashing.ts";
import type { Checksums, OpenedObject, Source, SourceObject } from "./source.ts";

export interface FileSourceOptions {
  dir: string;
  url: string;
  hashes: () => Hashes;
}

/** Read-buffer size: 1 MiB, or the file's size if smaller (at least 16 KiB). A 1 MiB
 * buffer for each 64 KiB file was most of a copy's garbage-collection time. */
function readBufferBytes(size: number): number {
  return Math.max(16 * 1024, Math.min(1024 * 1024, size));
}

/** Files stat'ed between two turns of the event loop (see walk). */
const STATS_PER_TURN = 512;

export function createFileSource(options: FileSourceOptions): Source {
  const root = options.dir;
  const toObject = (key: string, size: number, mtimeMs: number): SourceObject => ({
    key,
    url: `file://${join(root, key)}`,
    size,
    version: `${size}-${Math.trunc(mtimeMs * 1000)}`,
  });
  // Files are stat'ed synchronously, STATS_PER_TURN at a time, yielding to the event loop in
  // between so the destination listing running beside this one keeps flowing. A stat is a
  // few microseconds of kernel time; through the libuv pool each one also cost a thread
  // hand-off and a promise, which made the 100,000 stats of a no-op run twice as expensive.
  async function* walk(dir: string, rel: string, signal: AbortSignal): AsyncGenerator<SourceObject> {
    const files: string[] = [];
    const folders: string[] = [];
    for await (const entry of await opendir(dir)) {
      signal.throwIfAborted();
      const key = rel === "" ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) folders.push(key);
      else if (entry.isFile()) files.push(key);
      // Symlinks, sockets and devices are not data files: skipped on purpose.
    }
    for (let i = 0; i < files.length; i += STATS_PER_TURN) {
      signal.throwIfAborted();
      if (i > 0) await new Promise((resolve) => setImmediate(resolve));
      const batch: SourceObject[] = [];
      for (const key of files.slice(i, i + STATS_PER_TURN)) {
        // A file deleted since the folder was read is simply not part of this run.
        const s = statSync(join(root, key), { throwIfNoEntry: false });
        if (s?.isFile()) batch.push(toObject(key, s.size, s.mtimeMs));
      }
      yield* batch;
    }
    for (const key of folders) yield* walk(join(root, key), key, signal);
  }
  const current = async (key: string): Promise<SourceObject | undefined> => {
    try {
      const s = await stat(join(root, key));
      return s.isFile() ? toObject(key, s.size, s.mtimeMs) : undefined;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
  };
  const checkUnchanged = async (object: SourceObject): Promise<void> => {
    const now = await current(object.key);
    if (!now || now.version !== object.version) throw new SourceChangedError(`source changed while reading: ${object.url}`);
  };
  return {
    url: `file://${root}/`,
    egress: "none",
    async check() {
      let s;
      try {
        s = await lstat(root);
      } catch (error) {
        throw new InputError(`source folder does not exist: ${root}`, { cause: error });
      }
      if (!s.isDirectory()) throw new InputError(`source is not a folder: ${root}`);
    },
    list(signal) {
      return walk(root, "", signal);
    },
    stat: (key) => current(key),
    async open(object, signal): Promise<OpenedObject> {
      await checkUnchanged(object);
      const stream = createReadStream(join(root, object.key), { highWaterMark: readBufferBytes(object.size), signal });
      async function* body(): AsyncGenerator<Uint8Array> {
        for await (const chunk of stream) yield chunk as Buffer;
        await checkUnchanged(object);
      }
      return { declared: {}, body: body() };
    },
    async checksums(object, signal): Promise<Checksums> {
      const hashes = options.hashes();
      const stream = createReadStream(join(root, object.key), { highWaterMark: 1024 * 1024, signal });
      for await (const chunk of stream) hashes.update(chunk as Buffer);
      await checkUnchanged(object);
      return hashes.digest();
    },
    async close() {},
  };
}
