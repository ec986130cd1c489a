// A delay/bandwidth shaper in front of the local edge, so that `wrangler dev` on loopback
// behaves like R2 seen from another cloud: every response's first byte is held back by
// `firstByteMs` (added to whatever the edge itself takes) and every response body is paced
// to `streamMiBps` (one token bucket per response, so N parallel streams get N× the rate,
// as they do across a WAN). Requests pass through unchanged: method, path, query and every
// end-to-end header, the client's Host included, since SigV4 signs it. Bodies stream both
// ways with backpressure; nothing is buffered whole. The server runs in a worker thread
// (shaper-server.ts): a bench that reads a FUSE mount synchronously blocks its own thread,
// and the mount's data comes through this proxy.
import { Worker } from "node:worker_threads";
import type { ShaperWorkerData, ShaperWorkerMessage } from "./shaper-server.ts";

export interface ShaperOptions {
  /** The edge's base URL, e.g. http://127.0.0.1:8787 (plain HTTP). */
  target: string;
  /** Added before each response's status line and first body byte, in ms. 0: none. */
  firstByteMs: number;
  /** Per-response body rate cap in MiB/s. 0 or Infinity: no cap. */
  streamMiBps: number;
  /** Listen address; default 127.0.0.1. */
  host?: string;
  /** Listen port; default a free one. */
  port?: number;
}

export interface ShaperStats {
  /** Responses started (any status). */
  requests: number;
  /** Response body bytes sent to clients. */
  bytes: number;
}

export interface Shaper {
  url: string;
  stop(): Promise<void>;
  stats(): ShaperStats;
}

export async function startShaper(options: ShaperOptions): Promise<Shaper> {
  if (new URL(options.target).protocol !== "http:") throw new Error(`shaper target must be plain http: ${options.target}`);
  const host = options.host ?? "127.0.0.1";
  const counters = new SharedArrayBuffer(16);
  const data: ShaperWorkerData = { target: options.target, firstByteMs: options.firstByteMs, streamMiBps: options.streamMiBps, host, port: options.port ?? 0, counters };
  const worker = new Worker(new URL("./shaper-server.ts", import.meta.url), { workerData: data });
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new Error(`shaper worker exited with ${code} before listening`)));
    worker.once("message", (message: ShaperWorkerMessage) => {
      if (message.type === "listening") resolve(message.port);
      else reject(new Error(`shaper failed to start: ${message.type === "error" ? message.message : message.type}`));
    });
  }).catch(async (error: unknown) => {
    await worker.terminate();
    throw error;
  });
  const view = new BigInt64Array(counters);
  let stopping: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    stats: () => ({ requests: Number(Atomics.load(view, 0)), bytes: Number(Atomics.load(view, 1)) }),
    stop() {
      stopping ??= (async () => {
        const stopped = new Promise<void>((resolve) => worker.on("message", (message: ShaperWorkerMessage) => message.type === "stopped" && resolve()));
        worker.postMessage("stop");
        // A graceful close can wait on a client that never hangs up: cap it, then end the thread.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([stopped, exited, new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]);
        clearTimeout(timer);
        await worker.terminate();
      })();
      return stopping;
    },
  };
}
