// `ferry replicate SOURCE DEST [...]`: copies a dataset from GCS (or S3, or a folder) into
// R2 through the edge or R2's S3 endpoint, once and verified. Parses flags, calls the
// replicator's entry point, maps its errors to one-line CLI errors, sets the exit code.
import { parseArgs } from "node:util";
import { CliError, UsageError } from "./cli-error.ts";

const HELP = `usage: ferry replicate SOURCE DEST [options]

Copy every object under SOURCE that is new or changed to DEST, verified by checksum,
then publish DEST's dataset manifest. Reruns copy nothing that is already there.

  SOURCE   gs://BUCKET/PREFIX   Google Cloud Storage (GOOGLE_APPLICATION_CREDENTIALS;
                                STORAGE_EMULATOR_HOST for an emulator)
           s3://BUCKET/PREFIX   any S3 endpoint (--source-endpoint, FERRY_SOURCE_ACCESS_KEY_ID
                                and FERRY_SOURCE_SECRET_ACCESS_KEY, else the AWS_* variables)
           file:///DIR          a local folder
  DEST     s3://BUCKET/PREFIX   the edge at FERRY_EDGE_URL (default http://127.0.0.1:8787), or
                                --endpoint; key from FERRY_ACCESS_KEY_ID/FERRY_SECRET_ACCESS_KEY

options:
  --endpoint URL            write to this S3 endpoint (R2's own) instead of the edge
  --source-endpoint URL     S3 endpoint of an s3:// source (default AWS)
  --schedule "CRON"         run now, then on this node-cron schedule; never two runs at once
  --shard i/N               copy only the i-th of N stable hash shares of the keys (0-based)
  --concurrency N           objects copied at once                         default 16
  --parts-in-flight N       parts of one large object uploaded at once     default 4
  --part-size SIZE          multipart part size (all parts equal; grown to
                            stay within 10,000 parts)                      default 16MiB
  --multipart-threshold SIZE  objects larger than this go multipart        default part size
  --memory-budget SIZE      bytes buffered by all copies together          default 256MiB
  --bwlimit RATE            limit source reads to RATE bytes/s (e.g. 50M)
  --attempts N              attempts per object (checksum mismatch, errors) default 3
  --egress-price USD        source egress price per GiB, for the report    default 0.12
  --delete                  delete DEST objects (of this shard) that SOURCE no longer has
  --dry-run                 list and compare only; write nothing
  --json                    JSON lines on stdout: one per object, the summary last
  -h, --help                show this help

The key for DEST needs list, write and delete on DEST's prefix and write on
.ferry/ (manifests and the replicator's index live there).
`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      endpoint: { type: "string" },
      "source-endpoint": { type: "string" },
      schedule: { type: "string" },
      shard: { type: "string" },
      concurrency: { type: "string" },
      "parts-in-flight": { type: "string" },
      "part-size": { type: "string" },
      "multipart-threshold": { type: "string" },
      "memory-budget": { type: "string" },
      bwlimit: { type: "string" },
      attempts: { type: "string" },
      "egress-price": { type: "string" },
      delete: { type: "boolean" },
      "dry-run": { type: "boolean" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const replicator = await import("../replicator/src/main.ts");
  let config;
  try {
    config = replicator.buildConfig(positionals, values, process.env);
  } catch (error) {
    if (error instanceof replicator.ConfigError) throw new UsageError(`${error.message}${positionals.length !== 2 ? "\nusage: ferry replicate SOURCE DEST [options] (see --help)" : ""}`);
    throw error;
  }
  const controller = new AbortController();
  let signalled: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) process.exit(signal === "SIGINT" ? 130 : 143); // a second signal: stop now
    signalled = signal;
    controller.abort(new Error(`stopped by ${signal}`));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const code = await replicator.runReplicate(config, { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: controller.signal });
    if (code !== 0) throw new CliError("some objects failed (see above); a rerun retries only those", { exitCode: code });
  } catch (error) {
    if (error instanceof replicator.InterruptedError || signalled) throw new CliError(`stopped by ${signalled ?? "signal"}: finished objects stay, unfinished uploads were aborted`, { exitCode: signalled === "SIGTERM" ? 143 : 130 });
    if (error instanceof replicator.ReplicatorError) throw new CliError(error.message, { cause: error });
    throw error;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
