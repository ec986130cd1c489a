// The node agent end to end: a real edge (wrangler dev, local R2), a real agent process,
// real S3 clients. Cold then warm reads, odd ranges, ETag changes, corrupt block files,
// kill -9 during a warm, quota and pins, and the edge going away.
import { createHash, randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync, truncateSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BLOCKS_DIR } from "../../node-agent/src/cache/block-format.ts";
import { startAgentProcess, type AgentProcess } from "../helpers/agent-process.ts";
import { startLocalEdge, type LocalEdge, type TestKey } from "../helpers/local-edge.ts";
import { runOk } from "../helpers/real-clients.ts";
import { projectRoot } from "../../scripts/lib/edge-process.ts";

const MiB = 1024 * 1024;
const scratch = mkdtempSync(join(tmpdir(), "ferry-agent-e2e-"));
let edge: LocalEdge;
let writer: S3Client;
let nodeKey: TestKey;
const big = randomBytes(9 * MiB + 12345);
const small = Array.from({ length: 12 }, (_, i) => randomBytes(50_000 + i * 1000));

function client(url: string): S3Client {
  // Training code holds no Ferry secret: any credentials work against the agent.
  return new S3Client({ endpoint: url, region: "auto", forcePathStyle: true, credentials: { accessKeyId: "anything", secretAccessKey: "anything" } });
}

async function get(c: S3Client, key: string, range?: string): Promise<Buffer> {
  const out = await c.send(new GetObjectCommand({ Bucket: "datasets", Key: key, ...(range ? { Range: range } : {}) }));
  return Buffer.from((await out.Body?.transformToByteArray()) ?? []);
}

function blockFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (!entry.name.includes(".tmp") && !entry.name.endsWith(".json")) out.push(path);
    }
  };
  walk(join(dir, BLOCKS_DIR));
  return out;
}

function du(dir: string): number {
  return blockFiles(dir).reduce((sum, f) => sum + statSync(f).size, 0);
}

function sha(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

async function startAgent(name: string, args: string[] = []): Promise<AgentProcess> {
  return startAgentProcess({ edgeUrl: edge.url, key: nodeKey, cacheDir: join(scratch, name), args: ["--block-size", "1MiB", ...args] });
}

beforeAll(async () => {
  edge = await startLocalEdge();
  const admin = await edge.createKey(["all:datasets"]);
  nodeKey = await edge.createKey(["read,list:datasets"], { name: "node" });
  writer = new S3Client({ endpoint: edge.url, region: "auto", forcePathStyle: true, credentials: admin });
  await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: "agent/big.bin", Body: big }));
  for (const [i, body] of small.entries()) await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: `agent/small/${String(i).padStart(2, "0")}.bin`, Body: body }));
}, 180_000);

afterAll(async () => {
  await edge?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

describe("agent read path", () => {
  it("reads cold then warm, byte-identical, with warm bytes served from the cache", async () => {
    const agent = await startAgent("coldwarm");
    try {
      const c = client(agent.url);
      expect(sha(await get(c, "agent/big.bin"))).toBe(sha(big));
      const cold = (await agent.status()) as { bytesBySource: { origin: number; cache: number } };
      expect(cold.bytesBySource.origin).toBeGreaterThanOrEqual(big.length);
      expect(sha(await get(c, "agent/big.bin"))).toBe(sha(big));
      const warm = (await agent.status()) as { bytesBySource: { origin: number; cache: number } };
      expect(warm.bytesBySource.origin).toBe(cold.bytesBySource.origin);
      expect(warm.bytesBySource.cache).toBeGreaterThanOrEqual(big.length);
      const listed = await c.send(new ListObjectsV2Command({ Bucket: "datasets", Prefix: "agent/small/" }));
      expect(listed.Contents?.map((o) => o.Key)).toHaveLength(12);
      for (const [i, body] of small.entries()) expect(sha(await get(c, `agent/small/${String(i).padStart(2, "0")}.bin`))).toBe(sha(body));
    } finally {
      await agent.stop();
    }
  });

  it("after a restart, reads what the cache already holds without fetching it again", async () => {
    const first = await startAgent("restart");
    const c1 = client(first.url);
    try {
      expect(sha(await get(c1, "agent/big.bin"))).toBe(sha(big));
      for (const [i, body] of small.entries()) expect(sha(await get(c1, `agent/small/${String(i).padStart(2, "0")}.bin`))).toBe(sha(body));
    } finally {
      await first.stop();
    }
    // A new process knows its blocks (rescanned) but none of their objects' metadata yet.
    const second = await startAgent("restart");
    try {
      for (let i = 0; i < 100 && ((await second.status()) as { cache: { scanning: boolean } }).cache.scanning; i++) await new Promise((r) => setTimeout(r, 100));
      const c2 = client(second.url);
      expect(sha(await get(c2, "agent/big.bin"))).toBe(sha(big));
      for (const [i, body] of small.entries()) expect(sha(await get(c2, `agent/small/${String(i).padStart(2, "0")}.bin`))).toBe(sha(body));
      const status = (await second.status()) as { bytesBySource: { origin: number; cache: number } };
      expect(status.bytesBySource.origin).toBe(0);
      expect(status.bytesBySource.cache).toBeGreaterThanOrEqual(big.length);
    } finally {
      await second.stop();
    }
  });

  it("serves ranges at odd offsets, across block boundaries, and 416 past the end", async () => {
    const agent = await startAgent("ranges");
    try {
      const c = client(agent.url);
      for (const [start, end] of [[0, 0], [1, 1], [MiB - 3, MiB + 5], [3 * MiB + 17, 7 * MiB + 1], [big.length - 10, big.length - 1], [12345, 12345 + 2 * MiB]] as const) {
        expect((await get(c, "agent/big.bin", `bytes=${start}-${end}`)).equals(big.subarray(start, end + 1))).toBe(true);
      }
      expect((await get(c, "agent/big.bin", "bytes=-100")).equals(big.subarray(big.length - 100))).toBe(true);
      const past = await fetch(`${agent.url}/datasets/agent/big.bin`, { headers: { range: `bytes=${big.length}-` } });
      expect(past.status).toBe(416);
      expect(await past.text()).toContain("<Code>InvalidRange</Code>");
    } finally {
      await agent.stop();
    }
  });

  it("sees an object changed in R2 after the metadata TTL, never mixing versions", async () => {
    const agent = await startAgent("etag", ["--metadata-ttl", "1"]);
    try {
      const c = client(agent.url);
      const v1 = randomBytes(3 * MiB);
      const v2 = randomBytes(3 * MiB);
      await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: "agent/changing.bin", Body: v1 }));
      expect((await get(c, "agent/changing.bin")).equals(v1)).toBe(true);
      await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: "agent/changing.bin", Body: v2 }));
      await new Promise((r) => setTimeout(r, 1500));
      expect((await get(c, "agent/changing.bin")).equals(v2)).toBe(true);
    } finally {
      await agent.stop();
    }
  });

  it("serves small objects read again from memory: byte-identical whole and in ranges, never an old version", async () => {
    const agent = await startAgent("hot", ["--metadata-ttl", "1"]);
    try {
      const c = client(agent.url);
      const [v1, v2] = [randomBytes(60_000), randomBytes(60_000)];
      await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: "agent/hot.bin", Body: v1 }));
      for (let i = 0; i < 3; i++) expect((await get(c, "agent/hot.bin")).equals(v1)).toBe(true);
      expect((await get(c, "agent/hot.bin", "bytes=100-30099")).equals(v1.subarray(100, 30_100))).toBe(true);
      const held = (await agent.status()) as { memory: { objects: number; hits: number }; bytesBySource: { origin: number; cache: number } };
      // Read once from the origin, once more from the agent (and kept), then twice from memory: cache hits, as status counts them.
      expect(held.memory).toMatchObject({ objects: 1, hits: 2 });
      expect(held.bytesBySource.origin).toBe(v1.length);
      // At least the two reads from memory; the read that kept it counts as a cache hit only when
      // its block came from disk, not from the fill that had just landed (that one counts nowhere).
      expect(held.bytesBySource.cache).toBeGreaterThanOrEqual(v1.length + 30_000);
      const shown = await runOk(process.execPath, [join(projectRoot, "bin", "ferry.js"), "status", "--agent", agent.url]);
      expect(shown.stdout).toMatch(/^memory\s+1 small objects, .* of 256\.0 MiB, 2 hits$/m);
      // The same size, rewritten: once the TTL has passed the new version is served, not the held one.
      await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: "agent/hot.bin", Body: v2 }));
      await new Promise((r) => setTimeout(r, 1500));
      for (let i = 0; i < 3; i++) expect((await get(c, "agent/hot.bin")).equals(v2)).toBe(true);
    } finally {
      await agent.stop();
    }
  });

  it("refetches flipped and truncated block files instead of serving them", async () => {
    const dir = join(scratch, "corrupt");
    let agent = await startAgent("corrupt");
    const c = client(agent.url);
    expect((await get(c, "agent/big.bin")).equals(big)).toBe(true);
    await agent.stop();
    const files = blockFiles(dir).sort();
    expect(files.length).toBeGreaterThanOrEqual(10);
    const flipped = files[2] ?? "";
    const bytes = readFileSync(flipped);
    bytes[bytes.length - 100] = (bytes[bytes.length - 100] ?? 0) ^ 0xff;
    writeFileSync(flipped, bytes);
    truncateSync(files[5] ?? "", Math.floor(statSync(files[5] ?? "").size / 2));
    agent = await startAgent("corrupt");
    try {
      expect((await get(client(agent.url), "agent/big.bin")).equals(big)).toBe(true);
      const status = (await agent.status()) as { cache: { corruptBlocks: number } };
      expect(status.cache.corruptBlocks).toBeGreaterThanOrEqual(2);
    } finally {
      await agent.stop();
    }
  });

  it("keeps the cache within its quota (plus one block) and never evicts pinned data", async () => {
    const dir = join(scratch, "quota");
    const agent = await startAgent("quota", ["--cache-size", "6MiB"]);
    try {
      const warmed = await fetch(`${agent.url}/_ferry/warm`, { method: "POST", body: JSON.stringify({ bucket: "datasets", prefix: "agent/small/", pin: true }) });
      expect(warmed.status).toBe(202);
      const id = ((await warmed.json()) as { id: string }).id;
      for (let i = 0; i < 100; i++) {
        const job = (await (await fetch(`${agent.url}/_ferry/warm/${id}`)).json()) as { state: string };
        if (job.state === "done") break;
        expect(job.state).not.toBe("failed");
        await new Promise((r) => setTimeout(r, 100));
      }
      const c = client(agent.url);
      for (let round = 0; round < 2; round++) expect((await get(c, "agent/big.bin")).equals(big)).toBe(true);
      await new Promise((r) => setTimeout(r, 500));
      expect(du(dir)).toBeLessThanOrEqual(6 * MiB + MiB + 4096);
      const status = (await agent.status()) as { cache: { evictedBlocks: number; pinnedBlocks: number } };
      expect(status.cache.evictedBlocks).toBeGreaterThan(0);
      expect(status.cache.pinnedBlocks).toBe(12);
      const before = ((await agent.status()) as { bytesBySource: { origin: number } }).bytesBySource.origin;
      for (const [i, body] of small.entries()) expect(sha(await get(c, `agent/small/${String(i).padStart(2, "0")}.bin`))).toBe(sha(body));
      expect(((await agent.status()) as { bytesBySource: { origin: number } }).bytesBySource.origin).toBe(before);
    } finally {
      await agent.stop();
    }
  });
});
