// The shaper's HTTP server, run in a worker thread by shaper.ts: a reverse proxy that holds
// each response back `firstByteMs` and paces each response body to `streamMiBps`. It has its
// own event loop so that a caller blocked in a synchronous read on a FUSE mount (whose data
// comes through this very proxy) cannot stall it. Counters live in shared memory.
import { Agent, createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { parentPort, workerData } from "node:worker_threads";

/** What shaper.ts hands the worker. */
export interface ShaperWorkerData {
  target: string;
  firstByteMs: number;
  streamMiBps: number;
  host: string;
  port: number;
  /** BigInt64Array over it: [requests, bytes]. */
  counters: SharedArrayBuffer;
}

/** Messages from the worker: listening (with the port), stopped, or a start-up failure. */
export type ShaperWorkerMessage = { type: "listening"; port: number } | { type: "stopped" } | { type: "error"; message: string };

// Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection, not to the message: the
// shaper keeps its own keep-alive connections to the edge, so it never forwards these.
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "upgrade"]);

/** Raw header pairs minus hop-by-hop ones; Transfer-Encoding is kept only on requests (Node re-frames responses itself). */
function forwardable(raw: string[], keepTransferEncoding: boolean): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? "";
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) continue;
    if (lower === "transfer-encoding" && !keepTransferEncoding) continue;
    out.push(name, raw[i + 1] ?? "");
  }
  return out;
}

/** Writes `body` to `res` paced to `bytesPerSecond` (a cumulative schedule, so timer jitter does not add up). */
async function pacedCopy(body: IncomingMessage, res: ServerResponse, bytesPerSecond: number, onBytes: (n: number) => void): Promise<void> {
  const started = performance.now();
  let sent = 0;
  for await (const chunk of body) {
    const buffer = chunk as Buffer;
    if (!res.write(buffer)) {
      // Backpressure: the client reads slower than the cap; wait instead of buffering.
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off("drain", done);
          res.off("close", done);
          resolve();
        };
        res.on("drain", done);
        res.on("close", done);
      });
    }
    if (res.destroyed) return;
    sent += buffer.length;
    onBytes(buffer.length);
    if (bytesPerSecond > 0 && Number.isFinite(bytesPerSecond)) {
      const dueMs = (sent / bytesPerSecond) * 1000 - (performance.now() - started);
      if (dueMs > 1) await sleep(dueMs);
    }
  }
  res.end();
}

function serve(options: ShaperWorkerData): void {
  const port = parentPort;
  if (!port) throw new Error("shaper-server.ts runs as a worker thread of shaper.ts");
  const target = new URL(options.target);
  const bytesPerSecond = options.streamMiBps > 0 ? options.streamMiBps * 2 ** 20 : 0;
  const counters = new BigInt64Array(options.counters);
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity });

  const server = createServer((req, res) => {
    const upstream = httpRequest({
      host: target.hostname,
      port: target.port || 80,
      method: req.method,
      path: req.url,
      agent,
      // The client's Host header goes through as-is: it is part of the SigV4 signature.
      setHost: false,
      headers: forwardable(req.rawHeaders, true),
    });
    const fail = (error: Error) => {
      if (!res.headersSent) {
        res.writeHead(502, { "content-type": "text/plain" });
        res.end(`shaper: upstream request failed: ${error.message}\n`);
      } else res.destroy(error);
    };
    upstream.on("error", fail);
    // A client that goes away mid-response must not leave the edge streaming into nothing.
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    upstream.on("response", (answer) => {
      void (async () => {
        if (options.firstByteMs > 0) await sleep(options.firstByteMs);
        if (res.destroyed) {
          answer.destroy();
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, forwardable(answer.rawHeaders, false));
        Atomics.add(counters, 0, 1n);
        await pacedCopy(answer, res, bytesPerSecond, (n) => Atomics.add(counters, 1, BigInt(n)));
      })().catch((error: unknown) => res.destroy(error instanceof Error ? error : new Error(String(error))));
    });
    req.pipe(upstream);
  });
  // Benchmarks keep many connections open; Node's 5 s default would close idle ones under them.
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 0;
  server.requestTimeout = 0;
  server.once("error", (error) => port.postMessage({ type: "error", message: error.message } satisfies ShaperWorkerMessage));
  server.listen(options.port, options.host, () => {
    port.postMessage({ type: "listening", port: (server.address() as AddressInfo).port } satisfies ShaperWorkerMessage);
  });
  port.on("message", (message: unknown) => {
    if (message !== "stop") return;
    server.close(() => {
      agent.destroy();
      port.postMessage({ type: "stopped" } satisfies ShaperWorkerMessage);
      port.close();
    });
    server.closeAllConnections();
  });
}

serve(workerData as ShaperWorkerData);
