// `npm start`: the whole local stack in the foreground until Ctrl-C. The edge under
// wrangler dev (local R2), the sample HDF5 dataset uploaded through it with a writer key,
// a read-only key for you, a node agent with its cache in .ferry/agent-cache, a demo
// read through the agent (cold, then warm), and the commands to try next.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { resolveConfig } from "../node-agent/src/config.ts";
import { startAgent, type RunningAgent } from "../node-agent/src/main.ts";
import { writeTrajectoryDataset } from "../sample/trajectories.ts";
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
const stop = async (code: number) => {
  await agent?.stop();
  await edge.stop();
  process.exit(code);
};
process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));

try {
  const createKey = async (name: string, actions: string[]) => {
    const response = await fetch(`${edge.url}/_ferry/admin/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${secrets.FERRY_ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ name, grants: [{ bucket: "datasets", prefix: "sample/", actions }], expiresInSeconds: 7 * 86400 }),
    });
    if (!response.ok) throw new Error(`creating key ${name} failed: ${response.status} ${await response.text()}`);
    return (await response.json()) as { accessKeyId: string; secretAccessKey: string };
  };
  const client = (key: { accessKeyId: string; secretAccessKey: string }, endpoint = edge.url) =>
    new S3Client({ endpoint, region: "auto", forcePathStyle: true, credentials: key });

  say("writing the sample dataset (synthetic HDF5 robot trajectories) …");
  const dataset = await writeTrajectoryDataset({ outDir: join(values["work-dir"], "sample") });
  const writer = client(await createKey("npm-start-writer", ["write", "list"]));
  for (const file of dataset.files) {
    const name = file.path.split("/").at(-1) ?? file.path;
    await writer.send(new PutObjectCommand({ Bucket: "datasets", Key: `${prefix}${name}`, Body: readFileSync(file.path), ContentType: "application/x-hdf5" }));
  }
  say(`uploaded ${dataset.files.length} files (${(dataset.totalBytes / 2 ** 20).toFixed(1)} MiB) to s3://datasets/${prefix}`);

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
