// Cold reads stream through the agent: a real edge (wrangler dev, local R2), a real agent
// process, the AWS SDK as the client, and between agent and edge a proxy that holds a body
// back or cuts it (the test's stand-in for a slow or broken link). A cold read is answered
// once its own bytes have arrived, not the whole block; a body cut short resumes where it
// stopped; an object whose bytes do not match its source checksum never completes a read.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startAgentProcess, type AgentProcess } from "../helpers/agent-process.ts";
import { startGateProxy, type GateProxy } from "../helpers/gate-proxy.ts";
import { startLocalEdge, type LocalEdge } from "../helpers/local-edge.ts";

const MiB = 1024 * 1024;
const scratch = mkdtempSync(join(tmpdir(), "ferry-stream-e2e-"));
const held = randomBytes(3 * MiB + 777);
const cut = randomBytes(3 * MiB + 4321);
const forged = randomBytes(2 * MiB);
let edge: LocalEdge;
let proxy: GateProxy;
let agent: AgentProcess;
let client: S3Client;

async function get(key: string, range?: string): Promise<Buffer> {
  const out = await client.send(new GetObjectCommand({ Bucket: "datasets", Key: key, ...(range ? { Range: range } : {}) }));
  return Buffer.from((await out.Body?.transformToByteArray()) ?? []);
}

/** `promise`, or after 20 s a failure that shows what the agent asked the edge and logged. */
function within<T>(promise: Promise<T>, failure: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${failure}; edge requests: ${JSON.stringify(proxy.requests)}; agent log: ${agent.output().slice(-2000)}`)), 20_000);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

const gets = (key: string) => proxy.requests.filter((r) => r.method === "GET" && r.path === `/datasets/${key}`);

beforeAll(async () => {
  edge = await startLocalEdge();
  const admin = await edge.createKey(["all:datasets"]);
  const writer = new S3Client({ endpoint: edge.url, region: "auto", forcePathStyle: true, credentials: admin });
  await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: "stream/held.bin", Body: held }));
  await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: "stream/cut.bin", Body: cut }));
  // A copy whose recorded source checksum is not its own (what a bad copy would look like).
  await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: "stream/forged.bin", Body: forged, Metadata: { "ferry-crc32c": "AAAAAA==" } }));
  proxy = await startGateProxy(edge.url);
  const nodeKey = await edge.createKey(["read,list:datasets"], { name: "node" });
  // 4 MiB blocks (the default): each object here is one block.
  agent = await startAgentProcess({ edgeUrl: proxy.url, key: nodeKey, cacheDir: join(scratch, "cache"), args: ["--metadata-ttl", "indefinite"] });
  client = new S3Client({ endpoint: agent.url, region: "auto", forcePathStyle: true, credentials: { accessKeyId: "anything", secretAccessKey: "anything" } });
}, 120_000);

afterAll(async () => {
  await agent?.stop();
  await proxy?.close();
  await edge?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

it("answers a cold ranged read once its bytes have arrived, while the rest of the block is still on its way", async () => {
  proxy.holdAfter(512 * 1024, (path) => path === "/datasets/stream/held.bin");
  // A read that waits for the whole 3 MiB block waits until the gate opens: that is the failure.
  const first = await within(get("stream/held.bin", "bytes=0-131071"), "the read waited for bytes it did not ask for");
  expect(first.equals(held.subarray(0, 131072))).toBe(true);
  expect(proxy.forwardedBytes("/datasets/stream/held.bin")).toBeLessThanOrEqual(512 * 1024);
  proxy.open();
  expect((await within(get("stream/held.bin"), "the whole read did not finish after the gate opened")).equals(held)).toBe(true);
  // One origin request for both reads: the second joined the first's fill (or found it landed).
  expect(gets("stream/held.bin")).toHaveLength(1);
});

it("resumes a body cut short where it stopped, pinned to the same version", async () => {
  proxy.cutNextAfter(MiB, (path) => path === "/datasets/stream/cut.bin");
  expect((await get("stream/cut.bin")).equals(cut)).toBe(true);
  const requests = gets("stream/cut.bin");
  expect(requests).toHaveLength(2);
  // The resumed request asks for the rest only (its first byte is where the cut was), with If-Match.
  expect(requests[1]?.range).toBe(`bytes=${MiB}-${cut.length - 1}`);
  // And the block landed whole: a second read comes from the cache.
  expect((await get("stream/cut.bin", "bytes=100-199")).equals(cut.subarray(100, 200))).toBe(true);
  expect(gets("stream/cut.bin")).toHaveLength(2);
});

it("never completes a read of an object whose bytes do not match its source checksum", async () => {
  await expect(get("stream/forged.bin")).rejects.toThrow();
  const status = (await agent.status()) as { reader: { lineageMismatches: number; verifiedObjects: number } };
  expect(status.reader.lineageMismatches).toBe(1);
  // Nothing of it was kept: the next read goes to the origin again and fails the same way.
  await expect(get("stream/forged.bin")).rejects.toThrow();
  expect(gets("stream/forged.bin").length).toBeGreaterThanOrEqual(2);
});
