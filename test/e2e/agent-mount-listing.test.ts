// Walking a data set through the mount (kernel driver), as a job does at start: readdir of
// every folder and a stat of every file. Folder reads carry each entry's attributes
// (READDIRPLUS), so the stats send no LOOKUP; an immutable tree's listings stay in the
// kernel, so a second walk never reaches the agent; with a metadata TTL they do not, and a
// file added in R2 shows up once the TTL has passed.
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgentProcess, type AgentProcess } from "../helpers/agent-process.ts";
import { startLocalEdge, type LocalEdge, type TestKey } from "../helpers/local-edge.ts";
import { cleanUpMountTests } from "../helpers/mount-fixture.ts";

const scratch = mkdtempSync(join(tmpdir(), "ferry-mount-listing-"));
const mountPoint = join(scratch, "mnt");
let edge: LocalEdge;
let nodeKey: TestKey;
let writer: S3Client;
/** walk/<folder>/<file> → bytes, as uploaded. */
const files = new Map<string, Buffer>();
const FOLDERS = ["a", "b", "c"];
const FILES_PER_FOLDER = 40;

async function requests(agent: AgentProcess): Promise<Record<string, number>> {
  const status = (await agent.status()) as { mount: { requests: Record<string, number> } };
  return status.mount.requests;
}

const LOOKUP = "1";
const READDIR = "28";
const READDIRPLUS = "44";
const OPENDIR = "27";

/** readdir of walk/ and each of its folders, with a stat of every file: sizes by key. */
function walkAndStat(root: string): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const folder of readdirSync(join(root, "walk"), { withFileTypes: true })) {
    expect(folder.isDirectory()).toBe(true);
    for (const entry of readdirSync(join(root, "walk", folder.name), { withFileTypes: true })) {
      expect(entry.isFile()).toBe(true);
      sizes.set(`walk/${folder.name}/${entry.name}`, statSync(join(root, "walk", folder.name, entry.name)).size);
    }
  }
  return sizes;
}

beforeAll(async () => {
  edge = await startLocalEdge();
  const admin = await edge.createKey(["all:datasets"]);
  nodeKey = await edge.createKey(["read,list:datasets"], { name: "node" });
  writer = new S3Client({ endpoint: edge.url, region: "auto", forcePathStyle: true, credentials: admin });
  for (const folder of FOLDERS) {
    for (let i = 0; i < FILES_PER_FOLDER; i++) {
      const key = `walk/${folder}/episode_${String(i).padStart(3, "0")}.bin`;
      const body = randomBytes(1000 + i * 37 + folder.charCodeAt(0));
      files.set(key, body);
      await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: key, Body: body }));
    }
  }
  mkdirSync(mountPoint, { recursive: true });
}, 180_000);

afterAll(() => cleanUpMountTests({ edge, mountPoint, scratch }));

describe("walking the mount", () => {
  it("stats every file of a walk without a LOOKUP each, keeps an immutable tree's listings in the kernel, and reads every file byte-exact after", async () => {
    const agent = await startAgentProcess({ edgeUrl: edge.url, key: nodeKey, cacheDir: join(scratch, "cache-immutable"), args: ["--mount", mountPoint, "--metadata-ttl", "indefinite"] });
    try {
      const root = join(mountPoint, "datasets");
      const before = await requests(agent);
      const sizes = walkAndStat(root);
      expect(sizes).toEqual(new Map([...files].map(([key, body]) => [key, body.length])));
      const afterFirst = await requests(agent);
      // Only the bucket and walk/ themselves are looked up: the folders and files came with their attributes.
      expect((afterFirst[LOOKUP] ?? 0) - (before[LOOKUP] ?? 0)).toBeLessThanOrEqual(2);
      expect((afterFirst[READDIRPLUS] ?? 0) - (before[READDIRPLUS] ?? 0)).toBeGreaterThanOrEqual(FOLDERS.length + 1);

      // The same walk again: opendir still asks (it is how the kernel finds its cached listing), readdir never does.
      expect(walkAndStat(root)).toEqual(sizes);
      const afterSecond = await requests(agent);
      expect(afterSecond[READDIR] ?? 0).toBe(afterFirst[READDIR] ?? 0);
      expect(afterSecond[READDIRPLUS]).toBe(afterFirst[READDIRPLUS]);
      expect(afterSecond[LOOKUP]).toBe(afterFirst[LOOKUP]);
      expect(afterSecond[OPENDIR] ?? 0).toBeGreaterThan(afterFirst[OPENDIR] ?? 0);

      // Files known only from a listing open and read like any other, twice (the second time
      // on the reader thread, as passthrough files once their copies are pinned).
      for (let pass = 0; pass < 2; pass++) {
        for (const [key, body] of files) expect(readFileSync(join(root, key)).equals(body)).toBe(true);
      }
      expect((await requests(agent))[LOOKUP]).toBe(afterFirst[LOOKUP]);
    } finally {
      await agent.stop();
    }
  });

  it("with a metadata TTL, the kernel keeps no listing: a file added in R2 shows up in its folder once the TTL has passed", async () => {
    const agent = await startAgentProcess({ edgeUrl: edge.url, key: nodeKey, cacheDir: join(scratch, "cache-ttl"), args: ["--mount", mountPoint, "--metadata-ttl", "1"] });
    try {
      const folder = join(mountPoint, "datasets", "walk", "a");
      const names = readdirSync(folder);
      expect(names).toHaveLength(FILES_PER_FOLDER);
      const added = randomBytes(4321);
      await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: "walk/a/zz_added_later.bin", Body: added }));
      await new Promise((r) => setTimeout(r, 1500));
      const again = readdirSync(folder);
      expect(again).toHaveLength(FILES_PER_FOLDER + 1);
      expect(statSync(join(folder, "zz_added_later.bin")).size).toBe(added.length);
      expect(readFileSync(join(folder, "zz_added_later.bin")).equals(added)).toBe(true);
    } finally {
      await agent.stop();
    }
  });
});
