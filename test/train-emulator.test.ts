// The DLIO-style emulator against real bytes: a local directory, and a tiny node:http server
// that answers path-style Range GETs from that directory — a stand-in for an S3 endpoint (the
// agent and edge are too heavy for a unit test; bench:train runs them for real).
import { createServer } from "node:http";
import type { IncomingHttpHeaders, Server } from "node:http";
import { copyFile, mkdir, mkdtemp, open, readFile, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeMlperfDataset } from "../sample/mlperf.ts";
import { acceleratorsSupported, expectedChecksums, runTraining, sweep, verifyPass } from "../bench/train/emulator.ts";
import { assignSamples, listSamples, VerificationError } from "../bench/train/samples.ts";
import type { DataSet, SampleLocation, Workload } from "../bench/train/types.ts";
import { RESNET50 } from "../bench/train/workloads.ts";
import { measurePath } from "../bench/train/measure-path.ts";

// resnet50's record size and packing, but small batches and a short "compute" so runs take well under a second.
const WORKLOAD: Workload = { ...RESNET50, samplesPerFile: 4, batchSize: 3, computeSeconds: 0.05, readThreads: 2 };

let work = "";
let dataSet: DataSet;
let expected: Map<string, number>;
let server: Server;
let endpoint = "";
const requests: Array<{ url: string; headers: IncomingHttpHeaders }> = [];
let delayFirstRequestsMs = 0;
let delayedRequests = 0;

/** Serves GET /bucket/<key> from `work/<key>` with a single Range, like S3 path style. */
function startRangeServer(): Promise<Server> {
  const s = createServer((req, res) => {
    void (async () => {
      requests.push({ url: req.url ?? "", headers: req.headers });
      if (delayedRequests > 0) {
        delayedRequests--;
        await new Promise((r) => setTimeout(r, delayFirstRequestsMs));
      }
      const match = /^\/bucket\/(.+)$/.exec(decodeURIComponent(req.url ?? ""));
      const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
      if (!match?.[1] || !range) {
        res.writeHead(400).end("bad request");
        return;
      }
      const start = Number(range[1]);
      const end = Number(range[2]);
      const fh = await open(join(work, match[1]), "r").catch(() => undefined);
      if (!fh) {
        res.writeHead(404).end("NoSuchKey");
        return;
      }
      const body = Buffer.alloc(end - start + 1);
      await fh.read(body, 0, body.length, start);
      await fh.close();
      res.writeHead(206, { "content-length": String(body.length), "content-range": `bytes ${start}-${end}/*` }).end(body);
    })();
  });
  return new Promise((resolve) => s.listen(0, "127.0.0.1", () => resolve(s)));
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "ferry-emulator-"));
  const root = join(work, "data");
  const written = await writeMlperfDataset({ workload: "resnet50", outDir: root, files: 6, recordsPerFile: 4, seed: 3 });
  dataSet = { workload: WORKLOAD, root, files: written.files, totalBytes: written.totalBytes };
  expected = await expectedChecksums(dataSet);
  server = await startRangeServer();
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(work, { recursive: true, force: true });
});

const posix = (): SampleLocation => ({ kind: "posix", root: dataSet.root });
const s3 = (credentials?: { accessKeyId: string; secretAccessKey: string }): SampleLocation => ({ kind: "s3", endpoint, bucket: "bucket", prefix: "data/", ...(credentials ? { credentials } : {}) });

describe("sample assignment", () => {
  it("lists each packed record as its own byte range", () => {
    const samples = listSamples(dataSet);
    expect(samples).toHaveLength(24);
    expect(samples[5]).toEqual({ key: "resnet50_000001.rec#1", file: "resnet50_000001.rec", offset: 114_660, length: 114_660 });
  });

  it("gives accelerators disjoint samples, no repeats within an epoch, the same plan for the same seed", () => {
    const plan = assignSamples({ sampleCount: 24, accelerators: 4, batchSize: 3, steps: 2, seed: 9 });
    const flat = plan.flat(2);
    expect(flat).toHaveLength(24);
    expect(new Set(flat).size).toBe(24); // one whole epoch, every sample once
    for (const step of plan) expect(new Set(step.flat()).size).toBe(12);
    expect(assignSamples({ sampleCount: 24, accelerators: 4, batchSize: 3, steps: 2, seed: 9 })).toEqual(plan);
    expect(assignSamples({ sampleCount: 24, accelerators: 4, batchSize: 3, steps: 2, seed: 10 })).not.toEqual(plan);
  });
});

describe("runTraining", () => {
  it("measures AU in [0, 1] over a local directory and verifies every sample it reads", async () => {
    const verified = new Set<string>();
    const result = await runTraining({ location: posix(), dataSet, accelerators: 2, steps: 4, verify: expected, onVerified: (k) => verified.add(k) });
    expect(result.au).toBeGreaterThanOrEqual(0);
    expect(result.au).toBeLessThanOrEqual(1);
    expect(result.au).toBeGreaterThan(0.5); // local reads of 24 small records cannot starve a 50 ms step
    expect(result.steps).toBe(4);
    expect(result.verifiedSamples).toBe(4 * 2 * 3);
    expect(verified.size).toBe(24);
    // Three measured steps of 50 ms each: the wall time cannot be shorter.
    expect(result.wallSeconds).toBeGreaterThanOrEqual(0.15);
    expect(result.samplesPerSec).toBeCloseTo((3 * 2 * 3) / result.wallSeconds, 6);
    expect(result.mibPerSec).toBeCloseTo((3 * 2 * 3 * 114_660) / 1024 / 1024 / result.wallSeconds, 6);
  });

  it("reads through an S3-style endpoint with Range GETs, signed when given keys", async () => {
    requests.length = 0;
    const result = await runTraining({ location: s3({ accessKeyId: "AKTEST", secretAccessKey: "secret" }), dataSet, accelerators: 2, steps: 3, verify: expected });
    expect(result.verifiedSamples).toBe(18);
    expect(requests).toHaveLength(18);
    expect(requests[0]?.url).toMatch(/^\/bucket\/data\/resnet50_\d{6}\.rec$/);
    expect(requests[0]?.headers.range).toMatch(/^bytes=\d+-\d+$/);
    expect(requests[0]?.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKTEST\//);
    requests.length = 0;
    await runTraining({ location: s3(), dataSet, accelerators: 1, steps: 2 });
    expect(requests.every((r) => r.headers.authorization === undefined)).toBe(true);
  });

  it("excludes the first step from AU", async () => {
    // The first requests stall for 1.5 s (a cold start); the measured steps must not see it.
    delayFirstRequestsMs = 1500;
    delayedRequests = 6;
    const started = performance.now();
    const result = await runTraining({ location: s3(), dataSet, accelerators: 2, steps: 4 });
    const totalSeconds = (performance.now() - started) / 1000;
    expect(totalSeconds).toBeGreaterThan(1.5);
    expect(result.wallSeconds).toBeLessThan(totalSeconds - 1);
    expect(result.au).toBeGreaterThan(0.4); // with the stall counted it would be ≈ 0.15 × 3 / 1.65 < 0.3
  });

  it("cuts a run inside a step at the deadline: no new read starts, reads in flight finish and are verified", async () => {
    // Every GET takes 400 ms; the deadline is 200 ms, inside step 0 (3 samples, 2 readers per accelerator).
    delayFirstRequestsMs = 400;
    delayedRequests = 1_000;
    requests.length = 0;
    const verified = new Set<string>();
    const started = performance.now();
    const result = await runTraining({ location: s3(), dataSet, accelerators: 2, steps: 5, verify: expected, deadlineSeconds: 0.2, onVerified: (k) => verified.add(k) });
    const totalSeconds = (performance.now() - started) / 1000;
    delayedRequests = 0;
    // Only the 4 reads started before the deadline (2 readers × 2 accelerators), all finished and checked.
    expect(requests).toHaveLength(4);
    expect(result).toMatchObject({ accelerators: 2, steps: 0, verifiedSamples: 4, cutAtDeadline: "mid-step", basis: "whole-run", au: 0 });
    expect(verified.size).toBe(4);
    expect(totalSeconds).toBeLessThan(1.5); // not the 5 steps × 2 rounds × 400 ms the full run would take
    expect(result.wallSeconds).toBeGreaterThanOrEqual(0.35);
    expect(result.mibPerSec).toBeCloseTo((4 * 114_660) / 1024 / 1024 / result.wallSeconds, 6);
  });

  it("ends a run between steps once the deadline has passed, measured over its completed steps", async () => {
    const result = await runTraining({ location: posix(), dataSet, accelerators: 1, steps: 40, verify: expected, deadlineSeconds: 0.3 });
    expect(result.cutAtDeadline).toBeDefined();
    expect(result.steps).toBeGreaterThanOrEqual(2);
    expect(result.steps).toBeLessThan(40);
    if (result.cutAtDeadline === "between-steps") {
      expect(result.basis).toBe("measured-steps");
      expect(result.samplesPerSec).toBeCloseTo(((result.steps - 1) * 3) / result.wallSeconds, 6);
    }
  });

  it("fails with VerificationError on a flipped byte, locally and over HTTP", async () => {
    const bad = join(work, "bad");
    await mkdir(bad, { recursive: true });
    for (const f of dataSet.files) await copyFile(join(dataSet.root, f.name), join(bad, f.name));
    const victim = join(bad, "resnet50_000002.rec");
    const bytes = await readFile(victim);
    const fh = await open(victim, "r+");
    await fh.write(Buffer.from([(bytes[114_660 * 2 + 17] ?? 0) ^ 0x01]), 0, 1, 114_660 * 2 + 17);
    await fh.close();
    // Four steps × 2 accelerators × 3 samples cover the whole epoch of 24 samples, so the bad record is read.
    await expect(runTraining({ location: { kind: "posix", root: bad }, dataSet, accelerators: 2, steps: 4, verify: expected })).rejects.toMatchObject({
      name: "VerificationError",
      sample: "resnet50_000002.rec#2",
    });
    await expect(verifyPass({ location: { kind: "s3", endpoint, bucket: "bucket", prefix: "bad/" }, dataSet, expected })).rejects.toBeInstanceOf(VerificationError);
    await expect(verifyPass({ location: s3(), dataSet, expected })).resolves.toBe(24);
  });

  it("fails with a clear error when an object is missing", async () => {
    await expect(runTraining({ location: { kind: "s3", endpoint, bucket: "bucket", prefix: "nowhere/" }, dataSet, accelerators: 1, steps: 2 })).rejects.toThrow(/GET failed: resnet50_\d+\.rec#\d \(HTTP 404/);
  });
});

describe("sweep", () => {
  it("doubles the accelerator count, preparing before every run, and reports the largest count at AU ≥ 0.9", async () => {
    let prepared = 0;
    const runs = await sweep({ dataSet, steps: 3, maxAccelerators: 4, verify: expected, prepare: async () => {
        prepared++;
        return posix();
      },
    });
    expect(runs[0]?.accelerators).toBe(1);
    expect(prepared).toBe(runs.length);
    const supported = acceleratorsSupported(runs);
    if (supported === 4) expect(runs.map((r) => r.accelerators)).toEqual([1, 2, 4]);
    expect(supported).toBeGreaterThanOrEqual(0);
    expect(supported).toBeLessThanOrEqual(4);
    for (const r of runs) expect(r.verifiedSamples).toBe(r.steps * r.accelerators * 3);
  });

  it("caps a cold path's runs at one epoch, so no sample is read twice", async () => {
    const runs = await sweep({ dataSet, steps: 20, maxAccelerators: 2, singleEpoch: true, verify: expected, prepare: async () => posix() });
    // 24 samples, batches of 3: 8 steps for one accelerator, 4 for two.
    expect(runs[0]).toMatchObject({ accelerators: 1, steps: 8, verifiedSamples: 24 });
    if (runs[1]) expect(runs[1]).toMatchObject({ accelerators: 2, steps: 4, verifiedSamples: 24 });
  });

  it("stops at the first count that misses the bar when no count passes", async () => {
    // 100 ms to first byte on every request: one accelerator reading 3 samples with 2 threads cannot keep a 50 ms step busy.
    delayFirstRequestsMs = 100;
    delayedRequests = 1_000;
    const runs = await sweep({ dataSet, steps: 3, maxAccelerators: 8, prepare: async () => s3() });
    delayedRequests = 0;
    expect(runs.every((r) => r.accelerators === 1)).toBe(true);
    expect(acceleratorsSupported(runs)).toBe(0);
  });
});

describe("measurePath", () => {
  const common = { steps: 3, maxAccelerators: 2, deadlineSeconds: 30, onRun: () => undefined, log: () => undefined };

  it("verifies a full pass even when the runs read less, and notes re-reads on a cold path", async () => {
    const lines: string[] = [];
    const smallSet: DataSet = { ...dataSet, workload: { ...WORKLOAD, batchSize: 20 } }; // 24 samples < 2 steps × 20
    const path = { name: "local-cold", description: "a directory", prepare: async () => ({ location: posix() }), close: async () => undefined, firstEpoch: true };
    const result = await measurePath({ ...common, path, dataSet: smallSet, expected, log: (l) => lines.push(l) });
    expect(result.runs.length).toBeGreaterThan(0);
    expect(result.description).toMatch(/runs with 1(, 2)? accelerators read more than the 24-sample data set, so repeats may have come from a cache/);
    expect(lines.join("\n")).toMatch(/local-cold: runs read and verified all 24 samples|verification pass read all 24/);
  });

  it("reports a path that fails mid-sweep as failed, without its unverified runs, but lets a wrong byte stop everything", async () => {
    let calls = 0;
    const flaky = { name: "flaky", description: "d", prepare: async () => (++calls > 1 ? Promise.reject(new Error("mount went away")) : { location: posix() }), close: async () => undefined };
    const failed = await measurePath({ ...common, path: flaky, dataSet, expected });
    expect(failed).toMatchObject({ name: "flaky", runs: [], skipped: "failed: mount went away" });
    const wrong = new Map([...expected].map(([k, v]) => [k, v ^ 1]));
    const local = { name: "local", description: "d", prepare: async () => ({ location: posix() }), close: async () => undefined };
    await expect(measurePath({ ...common, path: local, dataSet, expected: wrong })).rejects.toBeInstanceOf(VerificationError);
  });

  it("says in the path's note which runs were cut at the deadline, and still verifies a full pass", async () => {
    // The first two GETs (the only reads started before the 0.2 s deadline) take 400 ms each.
    delayFirstRequestsMs = 400;
    delayedRequests = 2;
    const lines: string[] = [];
    const path = { name: "slow", description: "an endpoint; origin: somewhere", prepare: async () => ({ location: s3() }), close: async () => undefined };
    const result = await measurePath({ ...common, deadlineSeconds: 0.2, path, dataSet, expected, log: (l) => lines.push(l) });
    delayedRequests = 0;
    expect(result.runs).toHaveLength(1);
    expect(result.runs[0]).toMatchObject({ accelerators: 1, cutAtDeadline: "mid-step", basis: "whole-run", verifiedSamples: 2 });
    expect(result.acceleratorsSupported).toBe(0);
    // The note sits before "; origin:", so the Markdown table (which drops the origin) shows it.
    expect(result.description).toMatch(/^an endpoint \[runs with 1 accelerators cut at the 0\.2 s deadline inside a step .*over the whole run \(start-up included\).*\]; origin: somewhere$/);
    expect(lines.join("\n")).toMatch(/slow: runs read 2 of 24 samples; verification pass read all 24/);
  });

  it("passes a skipped path through with its reason", async () => {
    const skipped = { name: "s3fs", description: "d", skipped: "s3fs not installed", prepare: async () => Promise.reject(new Error("never")), close: async () => undefined };
    await expect(measurePath({ ...common, path: skipped, dataSet, expected })).resolves.toMatchObject({ skipped: "s3fs not installed", runs: [] });
  });
});
