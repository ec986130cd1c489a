// The pool end to end: one `wrangler dev` edge and four real agents on loopback sharing
// their caches through the edge's membership object. Each block is fetched from the edge
// once per cluster; kill -9 and SIGTERM during an epoch cost no read errors; a restarted
// agent serves its blocks without refetching; an empty joiner takes its share from the
// previous owners, not R2; corrupt peer bytes are bypassed; peer ports
// refuse unsigned or wrongly signed requests; a key without the cluster cannot join.
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blockKeyOf, rankOwners, type PeerMember } from "../../node-agent/src/pool/rendezvous.ts";
import { projectRoot } from "../../scripts/lib/edge-process.ts";
import { sha256Hex, signRequest, type Credentials } from "../../s3/sigv4.ts";
import { startAgentProcess, type AgentProcess } from "../helpers/agent-process.ts";
import { freePort, startLocalEdge, type LocalEdge, type TestKey } from "../helpers/local-edge.ts";

const BLOCK = 256 * 1024;
const CLUSTER = "gpu";
const scratch = mkdtempSync(join(tmpdir(), "ferry-pool-e2e-"));
let edge: LocalEdge;
let nodeKey: TestKey;
const agents: AgentProcess[] = [];
const peerPorts: number[] = [];
/** epoch name → key → bytes */
const epochs = new Map<string, Map<string, Buffer>>();

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const sizeOf = (epoch: string) => [...(epochs.get(epoch)?.values() ?? [])].reduce((s, b) => s + b.length, 0);
const blocksOf = (epoch: string) => [...(epochs.get(epoch)?.values() ?? [])].reduce((s, b) => s + Math.max(1, Math.ceil(b.length / BLOCK)), 0);

async function startMember(i: number, cacheName = `agent${i}`): Promise<AgentProcess> {
  return startAgentProcess({
    edgeUrl: edge.url,
    key: nodeKey,
    cacheDir: join(scratch, cacheName),
    args: ["--block-size", "256KiB", "--cache-size", "1GiB", "--cluster", CLUSTER, "--peer-listen", `127.0.0.1:${peerPorts[i]}`, "--heartbeat", "500ms", "--peer-timeout", "3s"],
  });
}

type PoolStatus = { members: Array<{ id: string }>; edgeBytes: number; edgeBlocks: number; peerBytes: number; peerCorrupt: number; fallbackBlocks: number; servedBlocks: number; takenOverBlocks: number; notHeldAnswers: number };
async function pool(agent: AgentProcess): Promise<PoolStatus> {
  return (await agent.status())["pool"] as PoolStatus;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function readObject(agent: AgentProcess, key: string): Promise<Buffer> {
  const response = await fetch(`${agent.url}/datasets/${key}`);
  if (response.status !== 200) throw new Error(`GET ${key} via ${agent.url}: ${response.status} ${await response.text()}`);
  return Buffer.from(await response.arrayBuffer());
}

/** Reads the whole epoch through one agent; returns the number of wrong or failed reads. */
async function readEpoch(agent: AgentProcess, epoch: string, onObject?: (done: number) => Promise<void>): Promise<number> {
  let errors = 0;
  let done = 0;
  for (const [key, bytes] of epochs.get(epoch) ?? []) {
    try {
      if (sha(await readObject(agent, key)) !== sha(bytes)) errors++;
    } catch {
      errors++;
    }
    await onObject?.(++done);
  }
  return errors;
}

async function clusterCall(key: Credentials, method: string, path: string, json?: unknown): Promise<Response> {
  const url = new URL(`/_ferry/clusters/${CLUSTER}${path}`, edge.url);
  const body = json === undefined ? "" : JSON.stringify(json);
  const headers = await signRequest({ method, url, credentials: key, payloadHash: await sha256Hex(body) });
  return fetch(url, { method, headers, ...(body ? { body } : {}) });
}

async function peerGet(port: number, key: string, offset: number, length: number, etag: string, credentials?: Credentials): Promise<Response> {
  const url = new URL(`http://127.0.0.1:${port}/datasets/${key}`);
  const headers: Record<string, string> = { range: `bytes=${offset}-${offset + length - 1}`, "if-match": `"${etag}"` };
  return fetch(url, { headers: credentials ? await signRequest({ method: "GET", url, credentials, headers, payloadHash: "UNSIGNED-PAYLOAD" }) : headers });
}

beforeAll(async () => {
  edge = await startLocalEdge();
  const admin = await edge.createKey(["all:datasets"]);
  nodeKey = await edge.createKey(["read,list:datasets"], { name: "node", clusters: [CLUSTER] });
  const writer = new S3Client({ endpoint: edge.url, region: "auto", forcePathStyle: true, credentials: admin });
  for (const epoch of ["e1", "e2", "e3", "e4", "e5"]) {
    const objects = new Map<string, Buffer>();
    for (let i = 0; i < 10; i++) objects.set(`pool/${epoch}/${String(i).padStart(2, "0")}.bin`, randomBytes(300_000 + i * 70_001));
    epochs.set(epoch, objects);
    await Promise.all([...objects].map(([key, body]) => writer.send(new PutObjectCommand({ Bucket: "datasets", Key: key, Body: body }))));
  }
  for (let i = 0; i < 4; i++) peerPorts.push(await freePort());
  agents.push(...(await Promise.all([0, 1, 2, 3].map((i) => startMember(i)))));
  await waitFor("four members everywhere", async () => (await Promise.all(agents.map(pool))).every((p) => p.members.length === 4));
}, 120_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await edge?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

describe("the pool", () => {
  it("reads every byte correctly on every agent while the edge serves each block once", async () => {
    const errors = await Promise.all(agents.map((a) => readEpoch(a, "e1")));
    expect(errors).toEqual([0, 0, 0, 0]);
    const stats = await Promise.all(agents.map(pool));
    expect(stats.reduce((s, p) => s + p.edgeBlocks, 0)).toBe(blocksOf("e1"));
    expect(stats.reduce((s, p) => s + p.edgeBytes, 0)).toBe(sizeOf("e1"));
    expect(stats.every((p) => p.peerBytes > 0)).toBe(true);
    // The edge's view, fed by heartbeats, and the CLI over it.
    await new Promise((r) => setTimeout(r, 1_200));
    const ferryStatus = (...args: string[]) =>
      promisify(execFile)(process.execPath, [join(projectRoot, "bin", "ferry.js"), "status", "--cluster", CLUSTER, ...args], {
        env: { ...process.env, FERRY_EDGE_URL: edge.url, FERRY_ACCESS_KEY_ID: nodeKey.accessKeyId, FERRY_SECRET_ACCESS_KEY: nodeKey.secretAccessKey },
      });
    const { stdout } = await ferryStatus("--json");
    expect((await ferryStatus()).stdout).toMatch(/4 live members[\s\S]*amplification 1\.00/);
    const view = JSON.parse(stdout) as { members: unknown[]; originAmplification: number; totals: { edgeBytes: number; distinctBytes: number } };
    expect(view.members).toHaveLength(4);
    expect(view.totals.edgeBytes).toBe(sizeOf("e1"));
    expect(view.originAmplification).toBeCloseTo(1, 5);
    console.log(`pool e1: ${sizeOf("e1")} bytes read by 4 agents, edge served ${view.totals.edgeBytes}, originAmplification ${view.originAmplification}`);
  });

  it("survives kill -9 of one agent mid-epoch: zero read errors, only its share fetched again", async () => {
    const survivors = agents.slice(0, 3);
    const before = await Promise.all(survivors.map(pool));
    let killed = false;
    const errors = await Promise.all([0, 1, 2, 3].map((r) =>
      readEpoch(survivors[r % 3] as AgentProcess, "e2", async (done) => {
        if (r === 0 && done === 3 && !killed) {
          killed = true;
          await agents[3]?.kill9();
        }
      }),
    ));
    expect(killed).toBe(true);
    expect(errors).toEqual([0, 0, 0, 0]);
    const after = await Promise.all(survivors.map(pool));
    const edgeBytes = after.reduce((s, p, i) => s + p.edgeBytes - (before[i]?.edgeBytes ?? 0), 0);
    // Survivors fetched their own share plus what the dead node owned: never more than the epoch.
    expect(edgeBytes).toBeLessThanOrEqual(sizeOf("e2"));
    console.log(`pool e2 (kill -9): survivors fetched ${edgeBytes} of ${sizeOf("e2")} bytes, fallback blocks ${after.reduce((s, p) => s + p.fallbackBlocks, 0)}`);
    await waitFor("the dead member to drop out", async () => (await Promise.all(survivors.map(pool))).every((p) => p.members.length === 3));
  });

  it("on SIGTERM leaves before it exits: peers stop routing to it, readers see no error", async () => {
    const leaver = agents[2] as AgentProcess;
    const leaverId = `127.0.0.1:${peerPorts[2]}`;
    const readers = [agents[0], agents[1]] as AgentProcess[];
    let exitedAt = 0;
    let droppedAt = 0;
    const exited = new Promise<void>((resolve) => leaver.child.once("exit", () => ((exitedAt = Date.now()), resolve())));
    const watch = (async () => {
      while (!exitedAt) {
        const lists = await Promise.all(readers.map(pool));
        if (!droppedAt && lists.every((p) => !p.members.some((m) => m.id === leaverId))) droppedAt = Date.now();
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const errors = await Promise.all([0, 1, 2, 3].map((r) =>
      readEpoch(readers[r % 2] as AgentProcess, "e3", async (done) => {
        if (r === 0 && done === 3) leaver.child.kill("SIGTERM");
      }),
    ));
    await exited;
    await watch;
    expect(errors).toEqual([0, 0, 0, 0]);
    expect(droppedAt).toBeGreaterThan(0);
    expect(droppedAt).toBeLessThan(exitedAt);
    const log = leaver.output();
    expect(log.indexOf('"msg":"left cluster"')).toBeGreaterThan(-1);
    expect(log.indexOf('"msg":"left cluster"')).toBeLessThan(log.indexOf('"msg":"stopped"'));
  });

  it("a restarted agent rejoins with its cache and serves its blocks without refetching", async () => {
    const restarted = await startMember(2);
    agents[2] = restarted;
    await waitFor("three members", async () => (await Promise.all([agents[0], agents[1], restarted].map((a) => pool(a as AgentProcess)))).every((p) => p.members.length === 3));
    // Ask it, over the peer protocol, for every block of e1 it owns now.
    const observer = (await (await clusterCall(nodeKey, "POST", "/members", { peer: "127.0.0.1:1", capacityBytes: 0, ttlMs: 2_000 })).json()) as { credential: Credentials; members: PeerMember[] };
    const members = observer.members.filter((m) => m.capacityBytes > 0);
    let served = 0;
    for (const [key, bytes] of epochs.get("e1") ?? []) {
      const etag = createHash("md5").update(bytes).digest("hex");
      for (let index = 0; index * BLOCK < bytes.length; index++) {
        if (rankOwners(blockKeyOf("datasets", key, etag, index), members)[0]?.id !== `127.0.0.1:${peerPorts[2]}`) continue;
        const length = Math.min(BLOCK, bytes.length - index * BLOCK);
        const response = await peerGet(peerPorts[2] ?? 0, key, index * BLOCK, length, etag, observer.credential);
        expect(response.status).toBe(206);
        expect(response.headers.get("x-amz-checksum-crc32c")).toBeTruthy();
        expect(sha(new Uint8Array(await response.arrayBuffer()))).toBe(sha(bytes.subarray(index * BLOCK, index * BLOCK + length)));
        served++;
      }
    }
    expect(served).toBeGreaterThan(0);
    expect((await pool(restarted)).edgeBytes).toBe(0);
  });

  it("ferry warm --cluster has each owner load its blocks: R2 read once, nothing copied to the warming node", async () => {
    const live = agents.slice(0, 3);
    const before = await Promise.all(live.map(pool));
    const { stdout } = await promisify(execFile)(process.execPath, [join(projectRoot, "bin", "ferry.js"), "warm", "--cluster", CLUSTER, "s3://datasets/pool/e5/", "--agent", live[0]?.url ?? "", "--json"]);
    const last = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as { state: string; files: number; blocks: number; byMember: Record<string, number> };
    expect(last).toMatchObject({ state: "done", files: 10, blocks: blocksOf("e5") });
    expect(Object.keys(last.byMember)).toHaveLength(3);
    const after = await Promise.all(live.map(pool));
    const delta = (k: "edgeBlocks" | "peerBytes") => after.reduce((s, p, i) => s + p[k] - (before[i]?.[k] ?? 0), 0);
    expect(delta("edgeBlocks")).toBe(blocksOf("e5"));
    expect(delta("peerBytes")).toBe(0);
    // Reading it afterwards anywhere costs no more R2 reads.
    expect(await readEpoch(live[1] as AgentProcess, "e5")).toBe(0);
    expect((await Promise.all(live.map(pool))).reduce((s, p, i) => s + p.edgeBlocks - (after[i]?.edgeBlocks ?? 0), 0)).toBe(0);
  });

  it("a node that joins empty takes the blocks it now owns from their owners before: reads nothing from R2", async () => {
    // e5 is warm on the three live members; the joiner's blocks sit with their runners-up.
    const joiner = await startMember(3, "joiner");
    agents[3] = joiner;
    await waitFor("four members everywhere", async () => (await Promise.all(agents.map(pool))).every((p) => p.members.length === 4));
    const before = await Promise.all(agents.map(pool));
    expect(await readEpoch(joiner, "e5")).toBe(0);
    const after = await Promise.all(agents.map(pool));
    expect(after[3]?.edgeBytes).toBe(0);
    expect(after[3]?.takenOverBlocks).toBeGreaterThan(0);
    expect(after.reduce((s, p, i) => s + p.edgeBlocks - (before[i]?.edgeBlocks ?? 0), 0)).toBe(0);
    // A block nobody holds: the previous owner answers 504 and the new owner reads R2 once.
    expect(await readEpoch(joiner, "e4")).toBe(0);
    const cold = await Promise.all(agents.map(pool));
    expect(cold.reduce((s, p, i) => s + p.notHeldAnswers - (after[i]?.notHeldAnswers ?? 0), 0)).toBeGreaterThan(0);
    expect(cold.reduce((s, p, i) => s + p.edgeBlocks - (after[i]?.edgeBlocks ?? 0), 0)).toBe(blocksOf("e4"));
  });

  it("bypasses a peer that answers with corrupted bytes", async () => {
    // A member that owns most blocks (huge capacity) and flips bits in everything it sends.
    const port = await freePort();
    const liar: Server = createServer((req, res) => {
      const body = randomBytes(BLOCK);
      res.statusCode = 206;
      res.setHeader("x-amz-checksum-crc32c", "AAAAAA==");
      res.setHeader("content-length", body.length);
      res.end(body);
    });
    await new Promise<void>((resolve) => liar.listen(port, "127.0.0.1", resolve));
    const liarId = `127.0.0.1:${port}`;
    try {
      await clusterCall(nodeKey, "POST", "/members", { peer: liarId, capacityBytes: 2 ** 50, ttlMs: 60_000 });
      const reader = agents[0] as AgentProcess;
      await waitFor("the liar to be listed", async () => (await pool(reader)).members.some((m) => m.id === liarId));
      expect(await readEpoch(reader, "e4")).toBe(0);
      expect((await pool(reader)).peerCorrupt).toBeGreaterThan(0);
    } finally {
      await clusterCall(nodeKey, "DELETE", `/members/${encodeURIComponent(liarId)}`);
      await new Promise<void>((resolve) => liar.close(() => resolve()));
    }
  });

  it("pools with a static --peers list (health-checked) and drops a dead peer", async () => {
    const ports = [await freePort(), await freePort()];
    const peers = ports.map((p) => `127.0.0.1:${p}`).join(",");
    const start = (i: number) =>
      startAgentProcess({
        edgeUrl: edge.url,
        key: nodeKey,
        cacheDir: join(scratch, `static${i}`),
        env: { FERRY_CLUSTER_SECRET: "static-secret-for-tests-only" },
        args: ["--block-size", "256KiB", "--peers", peers, "--peer-listen", `127.0.0.1:${ports[i]}`, "--heartbeat", "300ms", "--peer-timeout", "3s"],
      });
    const pair = await Promise.all([start(0), start(1)]);
    try {
      await waitFor("both static peers healthy", async () => (await Promise.all(pair.map(pool))).every((p) => p.members.length === 2));
      expect(await Promise.all(pair.map((a) => readEpoch(a, "e3")))).toEqual([0, 0]);
      const stats = await Promise.all(pair.map(pool));
      expect(stats.reduce((s, p) => s + p.edgeBlocks, 0)).toBe(blocksOf("e3"));
      await pair[1]?.kill9();
      expect(await readEpoch(pair[0] as AgentProcess, "e4")).toBe(0);
      await waitFor("the dead static peer to be dropped", async () => (await pool(pair[0] as AgentProcess)).members.length === 1);
    } finally {
      await Promise.all(pair.map((a) => a.stop()));
    }
  });

  it("refuses unsigned and wrongly signed peer requests, and a key without the cluster", async () => {
    const [key, bytes] = [...(epochs.get("e1") ?? [])][0] ?? ["", Buffer.alloc(0)];
    const etag = createHash("md5").update(bytes).digest("hex");
    const port = peerPorts[0] ?? 0;
    expect((await peerGet(port, key, 0, BLOCK, etag)).status).toBe(403);
    expect((await peerGet(port, key, 0, BLOCK, etag, { accessKeyId: "FRYPOOLFORGED000000", secretAccessKey: "wrong" })).status).toBe(403);
    // The node's own (storage) key is not the cluster credential either.
    expect((await peerGet(port, key, 0, BLOCK, etag, nodeKey)).status).toBe(403);
    const outsider = await edge.createKey(["read,list:datasets"], { name: "outsider", clusters: ["other"] });
    expect((await clusterCall(outsider, "POST", "/members", { peer: "127.0.0.1:9", capacityBytes: 1, ttlMs: 5_000 })).status).toBe(403);
    const refused = await startAgentProcess({ edgeUrl: edge.url, key: outsider, cacheDir: join(scratch, "outsider"), args: ["--cluster", CLUSTER, "--peer-listen", `127.0.0.1:${await freePort()}`], waitReady: false });
    const code = await new Promise<number | null>((resolve) => refused.child.once("exit", resolve));
    expect(code).not.toBe(0);
    expect(refused.output()).toContain("joining cluster failed");
  });
});
