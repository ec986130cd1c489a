// `npm start`: the whole local stack in the foreground until Ctrl-C. The edge under
// wrangler dev (local R2), the sample HDF5 dataset written to a local GCS server and
// copied into R2 by `ferry replicate`,
// a read-only key for you, a node agent with its cache in .ferry/agent-cache, a demo
// read through the agent (cold, then warm), and the commands to try next.
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Writable } from "node:stream";
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { Storage } from "@google-cloud/storage";
import { resolveConfig } from "../node-agent/src/config.ts";
import { startAgent, type RunningAgent } from "../node-agent/src/main.ts";
import { buildConfig, runReplicate } from "../replicator/src/main.ts";
import { writeTrajectoryDataset } from "../sample/trajectories.ts";
import { startGcsEmulator, type GcsEmulator } from "./lib/gcs-emulator.ts";
import { ensureDevSecrets } from "./lib/dev-vars.ts";
import { projectRoot, startEdge } from "./lib/edge-process.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8787" },
    "state-dir": { type: "string", default: join(projectRoot, ".wrangler", "state") },
    "work-dir": { type: "string", default: join(projectRoot, ".ferry") },
    "agent-port": { type: "string", default: "8788" },
    "exit-after-demo": { type: "boolean", default: false },
  },
});
const port = Number(values.port);
const say = (line: string) => process.stdout.write(`${line}\n`);
const prefix = "sample/trajectories/";

const secrets = ensureDevSecrets(join(projectRoot, ".dev.vars"));
say(`starting the edge (wrangler dev, local R2) on 127.0.0.1:${port} …`);
const edge = await startEdge({ port, persistDir: values["state-dir"], vars: { ...secrets } });
let agent: RunningAgent | undefined;
let gcs: GcsEmulator | undefined;
const stop = async (code: number) => {
  await agent?.stop();
  await gcs?.stop();
  await edge.stop();
  process.exit(code);
};
process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));

try {
  const createKey = async (name: string, actions: string[], extraPrefixes: string[] = []) => {
    const grants = ["sample/", ...extraPrefixes].map((p) => ({ bucket: "datasets", prefix: p, actions }));
    const response = await fetch(`${edge.url}/_ferry/admin/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${secrets.FERRY_ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ name, grants, expiresInSeconds: 7 * 86400 }),
    });
    if (!response.ok) throw new Error(`creating key ${name} failed: ${response.status} ${await response.text()}`);
    return (await response.json()) as { accessKeyId: string; secretAccessKey: string };
  };
  const client = (key: { accessKeyId: string; secretAccessKey: string }, endpoint = edge.url) =>
    new S3Client({ endpoint, region: "auto", forcePathStyle: true, credentials: key });

  say("writing the sample dataset (synthetic HDF5 robot trajectories) …");
  const dataset = await writeTrajectoryDataset({ outDir: join(values["work-dir"], "sample") });
  // The path data takes in production: processed files land in GCS (here the Cloud Storage
  // emulator), `ferry replicate` copies them once into R2 through the edge, agents read them.
  say("starting a local GCS server (the Cloud Storage emulator from firebase-tools) …");
  gcs = await startGcsEmulator();
  const storage = new Storage({ apiEndpoint: gcs.url, projectId: "ferry-demo" });
  const gcsBucket = storage.bucket("robot-processed");
  for (const file of dataset.files) {
    const name = file.path.split("/").at(-1) ?? file.path;
    await gcsBucket.upload(file.path, { destination: `${prefix}${name}`, resumable: false, contentType: "application/x-hdf5" });
  }
  say(`wrote ${dataset.files.length} files (${(dataset.totalBytes / 2 ** 20).toFixed(1)} MiB) to gs://robot-processed/${prefix}`);
  const writerKey = await createKey("npm-start-replicator", ["read", "list", "write", "delete"], [".ferry/"]);
  // @google-cloud/storage reads the emulator's address from the process environment.
  process.env["STORAGE_EMULATOR_HOST"] = gcs.url;
  const replicateEnv = { ...process.env, FERRY_EDGE_URL: edge.url, FERRY_ACCESS_KEY_ID: writerKey.accessKeyId, FERRY_SECRET_ACCESS_KEY: writerKey.secretAccessKey };
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) });
  const code = await runReplicate(buildConfig([`gs://robot-processed/${prefix}`, `s3://datasets/${prefix}`], { json: true }, replicateEnv), { stdout: sink, stderr: sink, env: replicateEnv, signal: new AbortController().signal });
  const summary = JSON.parse(lines.join("").trim().split("\n").at(-1) ?? "{}") as { copied?: number; bytes?: number; seconds?: number; egressUsd?: number };
  if (code !== 0) throw new Error(`ferry replicate failed:\n${lines.join("").slice(-2000)}`);
  say(`ferry replicate copied ${summary.copied} files (${((summary.bytes ?? 0) / 2 ** 20).toFixed(1)} MiB) from GCS into R2 through the edge in ${summary.seconds?.toFixed(1)} s, verified; one-time egress $${summary.egressUsd?.toFixed(4)}`);

  const readerKey = await createKey("npm-start-reader", ["read", "list"]);
  const reader = client(readerKey);
  const listed = await reader.send(new ListObjectsV2Command({ Bucket: "datasets", Prefix: prefix }));
  const first = listed.Contents?.[0]?.Key ?? `${prefix}episode_000000.hdf5`;
  const started = performance.now();
  const head = await reader.send(new GetObjectCommand({ Bucket: "datasets", Key: first, Range: "bytes=0-7" }));
  const magic = Buffer.from((await head.Body?.transformToByteArray()) ?? new Uint8Array());
  say(`demo read: listed ${listed.KeyCount} objects; first 8 bytes of ${first}: ${magic.toString("hex")} (the HDF5 signature is 894844460d0a1a0a) in ${(performance.now() - started).toFixed(0)} ms`);

  say("starting a node agent (cache in .ferry/agent-cache) …");
  agent = await startAgent(
    resolveConfig({
      flags: { edge: edge.url, "cache-dir": join(values["work-dir"], "agent-cache"), "cache-size": "2GiB", listen: `127.0.0.1:${values["agent-port"]}`, "log-level": "warn", "block-size": "1MiB" },
      env: { FERRY_ACCESS_KEY_ID: readerKey.accessKeyId, FERRY_SECRET_ACCESS_KEY: readerKey.secretAccessKey },
      file: {},
    }),
  );
  const viaAgent = client({ accessKeyId: "any", secretAccessKey: "any" }, agent.url);
  const keys = (listed.Contents ?? []).map((o) => o.Key ?? "");
  for (const pass of ["cold", "warm"]) {
    const t0 = performance.now();
    let bytes = 0;
    for (const key of keys) bytes += ((await (await viaAgent.send(new GetObjectCommand({ Bucket: "datasets", Key: key }))).Body?.transformToByteArray()) ?? new Uint8Array()).length;
    const ms = performance.now() - t0;
    say(`demo read through the agent (${pass}): ${keys.length} files, ${(bytes / 2 ** 20).toFixed(1)} MiB in ${ms.toFixed(0)} ms = ${(bytes / 2 ** 20 / (ms / 1000)).toFixed(0)} MiB/s`);
  }

  const env = `FERRY_EDGE_URL=${edge.url} AWS_ACCESS_KEY_ID=${readerKey.accessKeyId} AWS_SECRET_ACCESS_KEY=${readerKey.secretAccessKey}`;
  say("");
  say(`Ferry's local edge is up at ${edge.url}. A read-only key for s3://datasets/sample/ (valid 7 days):`);
  say(`  export ${env.replace(/ /g, " \\\n         ")}`);
  say("Try:");
  say(`  aws --endpoint-url ${edge.url} s3 ls s3://datasets/${prefix}`);
  say(`  aws --endpoint-url ${edge.url} s3 cp s3://datasets/${first} /tmp/`);
  say(`  curl -o /tmp/episode.hdf5 "$(npx ferry share s3://datasets/${first} --expires 1h)"`);
  say(`  npx ferry keys list`);
  say(`  aws --no-sign-request --endpoint-url ${agent.url} s3 ls s3://datasets/${prefix}     # through the agent's cache`);
  say(`  npx ferry status --agent ${agent.url}`);
  say("Ctrl-C stops the agent and the edge; their data stays in .ferry/agent-cache and .wrangler/state.");
  if (values["exit-after-demo"]) await stop(0);
} catch (error) {
  process.stderr.write(`npm start failed: ${error instanceof Error ? error.message : String(error)}\n`);
  await stop(1);
}
