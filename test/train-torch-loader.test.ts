// The real PyTorch DataLoader of the training bench over 4 small generated episodes: h5py
// on a directory, boto3 against a small local S3-shaped server (unsigned, path style), and
// a flipped byte that must fail the run instead of being counted.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runTorchLoader, torchUnavailable } from "../bench/train/torch-loader.ts";
import type { DataSet, Workload } from "../bench/train/types.ts";

const dir = mkdtempSync(join(tmpdir(), "ferry-torch-test-"));
const unavailable = await torchUnavailable();
if (unavailable) console.log(`torch loader tests skipped: ${unavailable}`);

function episodeSet(root: string): DataSet {
  execFileSync(process.execPath, [join(import.meta.dirname, "..", "bin", "ferry.js"), "sample", "--out", root, "--episodes", "4"], { stdio: "ignore" });
  const files = readdirSync(root)
    .filter((name) => name.endsWith(".hdf5"))
    .sort()
    .map((name) => ({ name, bytes: statSync(join(root, name)).size }));
  const workload: Workload = { name: "trajectory", sampleBytes: files[0]?.bytes ?? 0, samplesPerFile: 1, batchSize: 1, computeSeconds: 0, readThreads: 1 };
  return { workload, root, files, totalBytes: files.reduce((sum, f) => sum + f.bytes, 0) };
}

describe.skipIf(unavailable !== undefined)("torch DataLoader over the trajectory set", () => {
  let dataSet: DataSet;
  let server: Server;
  let endpoint = "";
  /** Names the server serves with one byte flipped. */
  const corrupt = new Set<string>();

  beforeAll(async () => {
    dataSet = episodeSet(join(dir, "episodes"));
    // Just enough S3 for boto3's GetObject: GET /bucket/prefix/name, unsigned.
    server = createServer((req, res) => {
      const match = /^\/datasets\/train\/trajectory\/(.+)$/.exec(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
      const name = match?.[1] ?? "";
      if (!dataSet.files.some((f) => f.name === name)) {
        res.writeHead(404, { "content-type": "application/xml" }).end("<Error><Code>NoSuchKey</Code></Error>");
        return;
      }
      const body = readFileSync(join(dataSet.root, name));
      if (corrupt.has(name)) body[body.length >> 1] = (body[body.length >> 1] ?? 0) ^ 0xff;
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(body.length), etag: '"x"' }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }, 120_000);
  afterAll(async () => {
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it("reads every episode with h5py over POSIX, verified", { timeout: 180_000 }, async () => {
    expect(dataSet.files).toHaveLength(4);
    const result = await runTorchLoader({ location: { kind: "posix", root: dataSet.root }, dataSet, pathName: "local-disk", numWorkers: 2 });
    expect(result).toMatchObject({ path: "local-disk", loader: "h5py", numWorkers: 2, verifiedSamples: 4 });
    expect(result.samplesPerSec).toBeGreaterThan(0);
    expect(result.mibPerSec).toBeGreaterThan(0);
  });

  it("reads every episode with boto3 over S3 (unsigned), verified", { timeout: 180_000 }, async () => {
    const location = { kind: "s3", endpoint, bucket: "datasets", prefix: "train/trajectory/" } as const;
    const result = await runTorchLoader({ location, dataSet, pathName: "agent-s3-warm", numWorkers: 2 });
    expect(result).toMatchObject({ path: "agent-s3-warm", loader: "boto3", numWorkers: 2, verifiedSamples: 4 });
  });

  it("fails the run when one sample's bytes differ from the source", { timeout: 180_000 }, async () => {
    const victim = dataSet.files[2]?.name ?? "";
    corrupt.add(victim);
    try {
      const location = { kind: "s3", endpoint, bucket: "datasets", prefix: "train/trajectory/" } as const;
      await expect(runTorchLoader({ location, dataSet, pathName: "edge-direct", numWorkers: 0 })).rejects.toThrow(/do not match the source/);
    } finally {
      corrupt.delete(victim);
    }
  });
});
