// The README's promises: `npm start` brings the local stack up and reads the sample back,
// and the Worker bundles for `wrangler deploy`.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { projectRoot } from "../../scripts/lib/edge-process.ts";
import { freePort } from "../helpers/local-edge.ts";

const scratch = mkdtempSync(join(tmpdir(), "ferry-quickstart-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("quick start", () => {
  it("npm start replicates the sample dataset from GCS into the edge and reads it back through an agent", async () => {
    const port = await freePort();
    const run = spawnSync(process.execPath, [join(projectRoot, "scripts", "start.ts"), "--port", String(port), "--state-dir", join(scratch, "state"), "--work-dir", join(scratch, "work"), "--exit-after-demo"], {
      cwd: projectRoot,
      encoding: "utf8",
      timeout: 150_000,
    });
    expect(run.stderr).not.toMatch(/failed/);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/ferry replicate copied 8 files/);
    expect(run.stdout).toMatch(/demo read through the agent \(warm\): 8 files/);
    // The first 8 bytes read back through the edge are the HDF5 file signature.
    expect(run.stdout).toMatch(/first 8 bytes of \S+\.hdf5: 894844460d0a1a0a /);
    expect(run.stdout).toMatch(/AWS_ACCESS_KEY_ID=FRY[A-Z0-9]{17}/);
  }, 180_000);

  it("wrangler deploy --dry-run bundles the Worker", () => {
    const outdir = join(scratch, "bundle");
    const run = spawnSync(process.execPath, [join(projectRoot, "node_modules", "wrangler", "bin", "wrangler.js"), "deploy", "--dry-run", "--outdir", outdir], {
      cwd: projectRoot,
      encoding: "utf8",
      timeout: 120_000,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    });
    expect(run.status, run.stderr).toBe(0);
    expect(statSync(join(outdir, "index.js")).size).toBeGreaterThan(10_000);
  }, 150_000);
});
