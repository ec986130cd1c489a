// Where the pool keeps blocks, end to end with one `wrangler dev` edge and four real agents:
// every agent reading the whole dataset leaves about one copy in the cluster (each owner
// its share) plus at most --near-cache of near copies per node, not four copies; a cluster
// warm with --pin and --replicas 2 pins each block on its two owners, read from R2 once,
// so kill -9 of one owner costs no refetch; and SIGTERM with --handoff copies the leaving
// node's pinned blocks to their next owners, so even the blocks it was the last holder of
// are never read from R2 again.
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blockKeyOf, rankOwners } from "../../node-agent/src/pool/rendezvous.ts";
import { projectRoot } from "../../scripts/lib/edge-process.ts";
import { startAgentProcess, type AgentProcess } from "../helpers/agent-process.ts";
import { freePort, startLocalEdge, type LocalEdge, type TestKey } from "../helpers/local-edge.ts";

const BLOCK = 256 * 1024;
const NEAR = 512 * 1024;
const CLUSTER = "place";
const scratch = mkdtempSync(join(tmpdir(), "ferry-pool-place-"));
let edge: LocalEdge;
let nodeKey: TestKey;
const agents: AgentProcess[] = [];
const peerPorts: number[] = [];
const sets = new Map<string, Map<string, Buffer>>();

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const bytesOf = (set: string) => [...(sets.get(set)?.values() ?? [])].reduce((s, b) => s + b.length, 0);
const blocksOf = (set: string) => [...(sets.get(set)?.values() ?? [])].reduce((s, b) => s + Math.max(1, Math.ceil(b.length / BLOCK)), 0);
const memberId = (i: number) => `127.0.0.1:${peerPorts[i]}`;

type PoolStatus = { members: Array<{ id: string }>; edgeBlocks: number; handoffBlocksSent: number; handoffBlocksReceived: number; replicaBlocks: number; nearCache: { boundBytes: number; bytes: number; blocks: number } };
type Status = { cache: { usedBytes: number; pinnedBlocks: number }; pool: PoolStatus };
const status = async (agent: AgentProcess) => (await agent.status()) as unknown as Status;

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Reads a whole set through one agent; returns the number of wrong or failed reads. */
async function readSet(agent: AgentProcess, set: string): Promise<number> {
  let errors = 0;
  for (const [key, bytes] of sets.get(set) ?? []) {
    const response = await fetch(`${agent.url}/datasets/${key}`).catch(() => undefined);
    if (response?.status !== 200 || sha(new Uint8Array(await response.arrayBuffer())) !== sha(bytes)) errors++;
  }
  return errors;
}

const edgeBlocks = async (live: AgentProcess[]) => (await Promise.all(live.map(status))).reduce((s, st) => s + st.pool.edgeBlocks, 0);

beforeAll(async () => {
  edge = await startLocalEdge();
  const admin = await edge.createKey(["all:datasets"]);
  nodeKey = await edge.createKey(["read,list:datasets"], { name: "node", clusters: [CLUSTER] });
  const writer = new S3Client({ endpoint: edge.url, region: "auto", forcePathStyle: true, credentials: admin });
  for (const [set, count] of [["near", 12], ["pinned", 24]] as const) {
    const objects = new Map<string, Buffer>();
    for (let i = 0; i < count; i++) objects.set(`place/${set}/${String(i).padStart(2, "0")}.bin`, randomBytes(400_000 + i * 50_003));
    sets.set(set, objects);
    await Promise.all([...objects].map(([key, body]) => writer.send(new PutObjectCommand({ Bucket: "datasets", Key: key, Body: body }))));
  }
  for (let i = 0; i < 4; i++) peerPorts.push(await freePort());
  agents.push(
    ...(await Promise.all(
      [0, 1, 2, 3].map((i) =>
        startAgentProcess({
          edgeUrl: edge.url,
          key: nodeKey,
          cacheDir: join(scratch, `agent${i}`),
          args: ["--block-size", "256KiB", "--cache-size", "1GiB", "--cluster", CLUSTER, "--peer-listen", memberId(i), "--heartbeat", "500ms", "--peer-timeout", "3s", "--near-cache", "512KiB", "--replicas", "2", "--handoff", "--handoff-deadline", "20s"],
        }),
      ),
    )),
  );
  await waitFor("four members everywhere", async () => (await Promise.all(agents.map(status))).every((s) => s.pool.members.length === 4));
}, 120_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await edge?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

describe("pool placement", () => {
  it("four agents reading everything hold about one copy plus a bounded near cache each, not four copies", async () => {
    for (const agent of agents) expect(await readSet(agent, "near")).toBe(0);
    const all = await Promise.all(agents.map(status));
    for (const st of all) {
      expect(st.pool.nearCache.boundBytes).toBe(NEAR);
      expect(st.pool.nearCache.bytes).toBeLessThanOrEqual(NEAR);
    }
    const used = all.reduce((s, st) => s + st.cache.usedBytes, 0);
    // Block headers add a few hundred bytes per block on disk.
    expect(used).toBeGreaterThanOrEqual(bytesOf("near"));
    expect(used).toBeLessThanOrEqual(bytesOf("near") + blocksOf("near") * 1024 + 4 * NEAR);
    expect(all.reduce((s, st) => s + st.pool.edgeBlocks, 0)).toBe(blocksOf("near"));
    console.log(`pool placement: 4 agents read ${bytesOf("near")} bytes each; caches hold ${used} bytes in all (near copies ${all.map((st) => st.pool.nearCache.bytes).join(", ")})`);
  });

  it("ferry warm --cluster --pin with --replicas 2 pins every block on two owners, reads R2 once, and a kill -9 of one costs no refetch", async () => {
    const before = await edgeBlocks(agents);
    const pinnedBefore = (await Promise.all(agents.map(status))).reduce((s, st) => s + st.cache.pinnedBlocks, 0);
    const { stdout } = await promisify(execFile)(process.execPath, [join(projectRoot, "bin", "ferry.js"), "warm", "--cluster", CLUSTER, "s3://datasets/place/pinned/", "--pin", "--agent", agents[0]?.url ?? "", "--json"]);
    const last = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as { state: string; blocks: number; replicas: number; pinned: boolean };
    expect(last).toMatchObject({ state: "done", blocks: blocksOf("pinned"), replicas: 2, pinned: true });
    expect((await edgeBlocks(agents)) - before).toBe(blocksOf("pinned"));
    const pinned = (await Promise.all(agents.map(status))).reduce((s, st) => s + st.cache.pinnedBlocks, 0) - pinnedBefore;
    expect(pinned).toBe(2 * blocksOf("pinned"));

    await agents[1]?.kill9();
    const live = [agents[0], agents[2], agents[3]].filter((a): a is AgentProcess => a !== undefined);
    await waitFor("the killed member to drop out", async () => (await Promise.all(live.map(status))).every((s) => s.pool.members.length === 3));
    const afterKill = await edgeBlocks(live);
    expect(await readSet(live[0] as AgentProcess, "pinned")).toBe(0);
    expect(await edgeBlocks(live)).toBe(afterKill);
  });

  it("SIGTERM with --handoff copies its pinned blocks to their next owners: nothing is read from R2 again", async () => {
    const leaver = agents[2] as AgentProcess;
    const live = [agents[0], agents[3]].filter((a): a is AgentProcess => a !== undefined);
    // Blocks whose only live holder is the leaver (their other owner was killed above).
    let lastHolderBlocks = 0;
    const owners = [0, 1, 2, 3].map((i) => ({ id: memberId(i), peer: memberId(i), capacityBytes: 2 ** 30 }));
    for (const [key, bytes] of sets.get("pinned") ?? []) {
      const etag = createHash("md5").update(bytes).digest("hex");
      for (let index = 0; index < Math.ceil(bytes.length / BLOCK); index++) {
        const top = rankOwners(blockKeyOf("datasets", key, etag, index), owners).slice(0, 2).map((m) => m.id).sort();
        if (top.join() === [memberId(1), memberId(2)].sort().join()) lastHolderBlocks++;
      }
    }
    expect(lastHolderBlocks).toBeGreaterThan(0);
    const before = await edgeBlocks(live);
    expect(await leaver.stop()).toBe(0);
    const sent = /"msg":"handoff done".*?"sent":(\d+)/.exec(leaver.output());
    expect(Number(sent?.[1] ?? 0)).toBeGreaterThanOrEqual(lastHolderBlocks);
    await waitFor("the leaver to drop out", async () => (await Promise.all(live.map(status))).every((s) => s.pool.members.length === 2));
    for (const agent of live) expect(await readSet(agent, "pinned")).toBe(0);
    expect(await edgeBlocks(live)).toBe(before);
    const received = (await Promise.all(live.map(status))).reduce((s, st) => s + st.pool.handoffBlocksReceived, 0);
    expect(received).toBeGreaterThanOrEqual(lastHolderBlocks);
  });
});
