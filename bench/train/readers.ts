// Reads one sample's bytes from a SampleLocation, streaming through pooled chunk buffers so a
// 146.6 MB unet3d sample never sits in memory, and optionally CRC32C-ing them on the way.
// POSIX: fs.promises FileHandle reads (the libuv pool, so the bench raises UV_THREADPOOL_SIZE).
// S3: undici with a keep-alive pool, path-style GET with a Range header, SigV4 when given keys.
import { open } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { crc32c } from "@node-rs/crc32";
import { Agent, request } from "undici";
import { RequestSigner, uriEncode } from "../../s3/sigv4.ts";
import { nodeDigests } from "../../s3/node-digests.ts";
import { SampleReadError } from "./samples.ts";
import type { Sample } from "./samples.ts";
import type { SampleLocation } from "./types.ts";

export interface SampleReader {
  /** Reads the sample's range whole; the CRC32C of its bytes when `checksum` is set. Throws SampleReadError. */
  read(sample: Sample, options: { checksum: boolean }): Promise<{ bytes: number; crc32c: number | undefined }>;
  close(): Promise<void>;
}

export interface ReaderOptions {
  /** Reads in flight at most (sizes the buffer pool and the HTTP connection pool). */
  concurrency: number;
  /** Bytes per read() call; default 1 MiB (the agent's block size order, FUSE splits into 128 KiB anyway). */
  chunkBytes?: number;
}

export function openReader(location: SampleLocation, options: ReaderOptions): SampleReader {
  return location.kind === "posix" ? posixReader(location.root, options) : s3Reader(location, options);
}

function posixReader(root: string, options: ReaderOptions): SampleReader {
  const chunkBytes = options.chunkBytes ?? 1024 * 1024;
  const free: Buffer[] = [];
  // One handle per file for the whole run: packed resnet50 files are read many times, and a
  // training job's readers keep their files open too.
  const handles = new Map<string, Promise<FileHandle>>();
  const handle = (file: string): Promise<FileHandle> => {
    let h = handles.get(file);
    if (!h) {
      h = open(join(root, file), "r");
      handles.set(file, h);
    }
    return h;
  };
  return {
    async read(sample, { checksum }) {
      const buffer = free.pop() ?? Buffer.allocUnsafe(chunkBytes);
      let crc = 0;
      let done = 0;
      try {
        const fh = await handle(sample.file);
        while (done < sample.length) {
          const { bytesRead } = await fh.read(buffer, 0, Math.min(chunkBytes, sample.length - done), sample.offset + done);
          if (bytesRead === 0) throw new SampleReadError(`short read: ${sample.key} (${done} of ${sample.length} bytes)`, { sample: sample.key });
          if (checksum) crc = crc32c(buffer.subarray(0, bytesRead), crc);
          done += bytesRead;
        }
      } catch (error) {
        if (error instanceof SampleReadError) throw error;
        throw new SampleReadError(`cannot read sample: ${sample.key} (${error instanceof Error ? error.message : String(error)})`, { sample: sample.key, cause: error });
      } finally {
        free.push(buffer);
      }
      return { bytes: done, crc32c: checksum ? crc : undefined };
    },
    async close() {
      const settled = await Promise.allSettled(handles.values());
      await Promise.all(settled.flatMap((s) => (s.status === "fulfilled" ? [s.value.close()] : [])));
    },
  };
}

/** Network errors (a keep-alive socket closed under us) are retried; HTTP answers are not. */
function isRetryable(error: unknown): boolean {
  return error instanceof Error && !(error instanceof SampleReadError) && ("code" in error ? String(error.code).startsWith("UND_ERR") || String(error.code).startsWith("ECONN") : false);
}

function s3Reader(location: Extract<SampleLocation, { kind: "s3" }>, options: ReaderOptions): SampleReader {
  const dispatcher = new Agent({ connections: options.concurrency, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000 });
  const signer = location.credentials ? new RequestSigner(location.credentials, { digests: nodeDigests }) : undefined;
  const base = location.endpoint.replace(/\/+$/, "");

  const once = async (sample: Sample, checksum: boolean): Promise<{ bytes: number; crc32c: number | undefined }> => {
    const url = new URL(`${base}/${uriEncode(location.bucket, { keepSlash: false })}/${uriEncode(location.prefix + sample.file, { keepSlash: true })}`);
    const range = `bytes=${sample.offset}-${sample.offset + sample.length - 1}`;
    const headers = signer ? await signer.sign({ method: "GET", url, headers: { range } }) : { range };
    const response = await request(url, { method: "GET", headers, dispatcher });
    // 200 is fine only when the range is the whole object (some servers ignore a full Range).
    const whole = response.statusCode === 200 && sample.offset === 0 && Number(response.headers["content-length"]) === sample.length;
    if (response.statusCode !== 206 && !whole) {
      const body = (await response.body.text()).slice(0, 200);
      throw new SampleReadError(`GET failed: ${sample.key} (HTTP ${response.statusCode}: ${body})`, { sample: sample.key });
    }
    let crc = 0;
    let bytes = 0;
    for await (const chunk of response.body) {
      const data = chunk instanceof Uint8Array ? chunk : Buffer.from(String(chunk));
      if (checksum) crc = crc32c(data, crc);
      bytes += data.length;
    }
    if (bytes !== sample.length) throw new SampleReadError(`short read: ${sample.key} (${bytes} of ${sample.length} bytes)`, { sample: sample.key });
    return { bytes, crc32c: checksum ? crc : undefined };
  };

  return {
    async read(sample, { checksum }) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await once(sample, checksum);
        } catch (error) {
          if (attempt < 3 && isRetryable(error)) continue;
          if (error instanceof SampleReadError) throw error;
          throw new SampleReadError(`GET failed: ${sample.key} (${error instanceof Error ? error.message : String(error)})`, { sample: sample.key, cause: error });
        }
      }
    },
    async close() {
      await dispatcher.close();
    },
  };
}
