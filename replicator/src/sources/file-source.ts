// A local folder as a source (file:///dir): keys are paths relative to it with "/".
// The version is size and mtime (listing reads no bytes); reads check that neither
// changed from open to end, so a file rewritten mid-copy is retried, never half-copied.
import { createReadStream } from "node:fs";
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

export function createFileSource(options: FileSourceOptions): Source {
  const root = options.dir;
  const toObject = (key: string, size: number, mtimeMs: number): SourceObject => ({
    key,
    url: `file://${join(root, key)}`,
    size,
    version: `${size}-${Math.trunc(mtimeMs * 1000)}`,
  });
  async function* walk(dir: string, rel: string, signal: AbortSignal): AsyncGenerator<SourceObject> {
    const entries = await opendir(dir);
    for await (const entry of entries) {
      signal.throwIfAborted();
      const path = join(dir, entry.name);
      const key = rel === "" ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) yield* walk(path, key, signal);
      else if (entry.isFile()) {
        const s = await stat(path);
        yield toObject(key, s.size, s.mtimeMs);
      }
      // Symlinks, sockets and devices are not data files: skipped on purpose.
    }
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
      const stream = createReadStream(join(root, object.key), { highWaterMark: 1024 * 1024, signal });
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
