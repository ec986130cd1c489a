// `npm run edge` as a user runs it: answers on loopback, keeps R2 and key state across
// restarts, and leaves no workerd behind after SIGTERM or SIGINT.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, describe, expect, it } from "vitest";
import { readDevVars } from "../../scripts/lib/dev-vars.ts";
import { projectRoot } from "../../scripts/lib/edge-process.ts";
import { freePort } from "../helpers/local-edge.ts";

const stateDir = mkdtempSync(join(tmpdir(), "ferry-edge-life-"));
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

async function runEdge(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [join(projectRoot, "scripts", "edge.ts"), "--port", String(port), "--state-dir", stateDir], { cwd: projectRoot, stdio: "ignore" });
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/_ferry/health`)).ok) return child;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  child.kill("SIGKILL");
  throw new Error("npm run edge did not come up");
}

async function stopWith(child: ChildProcess, signal: NodeJS.Signals): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  child.kill(signal);
  return exited;
}

function workerdListeningOn(port: number): boolean {
  const ps = spawnSync("ps", ["-eo", "args"], { encoding: "utf8" });
  return ps.stdout.split("\n").some((line) => line.includes("workerd") && line.includes(`:${port}`));
}

describe("npm run edge", () => {
  it("keeps objects and keys across a restart and stops cleanly on SIGTERM and SIGINT", async () => {
    const port = await freePort();
    let edge = await runEdge(port);
    const token = readDevVars(join(projectRoot, ".dev.vars"))["FERRY_ADMIN_TOKEN"];
    expect(token).toBeTruthy();
    const created = await fetch(`http://127.0.0.1:${port}/_ferry/admin/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "lifecycle", grants: [{ bucket: "shared", prefix: "life/", actions: ["read", "write"] }] }),
    });
    expect(created.status).toBe(201);
    const key = (await created.json()) as { accessKeyId: string; secretAccessKey: string };
    const client = new S3Client({ endpoint: `http://127.0.0.1:${port}`, region: "auto", forcePathStyle: true, credentials: key });
    await client.send(new PutObjectCommand({ Bucket: "shared", Key: "life/persisted.txt", Body: "still here" }));

    expect(await stopWith(edge, "SIGTERM")).toBe(0);
    await expect(fetch(`http://127.0.0.1:${port}/_ferry/health`)).rejects.toThrow();
    expect(workerdListeningOn(port)).toBe(false);

    edge = await runEdge(port);
    const got = await client.send(new GetObjectCommand({ Bucket: "shared", Key: "life/persisted.txt" }));
    expect(await got.Body?.transformToString()).toBe("still here");
    expect(await stopWith(edge, "SIGINT")).toBe(0);
    expect(workerdListeningOn(port)).toBe(false);
  }, 240_000);
});
