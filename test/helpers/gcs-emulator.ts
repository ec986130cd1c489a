// GCS for tests: the in-process Cloud Storage emulator (scripts/lib/gcs-emulator.ts)
// behind a small HTTP proxy that counts media downloads and can flip one byte in chosen
// downloads, a real way to corrupt a transfer between GCS and the replicator.
import { createServer, request, type IncomingMessage, type Server } from "node:http";
import { startGcsEmulator, type GcsEmulator } from "../../scripts/lib/gcs-emulator.ts";

export { startGcsEmulator, type GcsEmulator };

export interface GcsProxy {
  /** Use as STORAGE_EMULATOR_HOST. */
  url: string;
  /** Media downloads seen, by object name. */
  downloads: Map<string, number>;
  /** Corrupts the next `times` downloads of `name` (Infinity: all of them) by flipping one byte. */
  corrupt(name: string, times: number): void;
  stop(): Promise<void>;
}

function objectName(url: URL): string | undefined {
  if (url.searchParams.get("alt") !== "media") return undefined;
  const m = /\/b\/[^/]+\/o\/(.+)$/.exec(url.pathname);
  return m?.[1] ? decodeURIComponent(m[1]) : undefined;
}

export async function startGcsProxy(target: string): Promise<GcsProxy> {
  const upstream = new URL(target);
  const downloads = new Map<string, number>();
  const corruptions = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", target);
    const name = objectName(url);
    if (name !== undefined) downloads.set(name, (downloads.get(name) ?? 0) + 1);
    const left = name === undefined ? 0 : (corruptions.get(name) ?? 0);
    if (name !== undefined && left > 0) corruptions.set(name, left - 1);
    const forward = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } }, (up: IncomingMessage) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      let flipped = left === 0;
      up.on("data", (chunk: Buffer) => {
        if (!flipped && chunk.length > 0) {
          const copy = Buffer.from(chunk);
          const at = Math.floor(copy.length / 2);
          copy[at] = (copy[at] ?? 0) ^ 0x01;
          flipped = true;
          res.write(copy);
        } else res.write(chunk);
      });
      up.on("end", () => res.end());
      up.on("error", () => res.destroy());
    });
    forward.on("error", () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    downloads,
    corrupt(name, times) {
      corruptions.set(name, times);
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
