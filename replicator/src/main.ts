// The replicator's entry point: wires the concrete source (GCS, S3 or a folder), the S3
// destination (the edge or R2's endpoint) and the reporter to a run, once or on a schedule.
// Returns the exit code: 0 when every object was copied or skipped, 1 otherwise.
import { describeConfig, type ReplicateConfig } from "./config.ts";
import { createS3Destination, type S3Destination } from "./dest/s3-destination.ts";
import { InputError, InterruptedError } from "./errors.ts";
import { createHashes } from "./copy/hashing.ts";
import { replicateOnce } from "./copy/run.ts";
import { createReporter, type Reporter } from "./report/reporter.ts";
import { createS3Client } from "./s3-client.ts";
import { runOnSchedule } from "./schedule/schedule.ts";
import { createFileSource } from "./sources/file-source.ts";
import { createS3Source } from "./sources/s3-source.ts";
import type { Source } from "./sources/source.ts";
import type { RunSummary } from "./report/summary.ts";

export { buildConfig, type ReplicateConfig, type ReplicateFlags } from "./config.ts";
export { ConfigError, InputError, InterruptedError, ReplicatorError } from "./errors.ts";
export type { RunSummary } from "./report/summary.ts";

export interface ReplicateIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
}

export async function openSource(config: ReplicateConfig, env: NodeJS.ProcessEnv): Promise<Source> {
  const location = config.source;
  switch (location.scheme) {
    case "gs": {
      // Loaded only for gs:// sources: the Google client is the heaviest import by far.
      const { createGcsSource } = await import("./sources/gcs-source.ts");
      return createGcsSource(location, { projectId: env["GOOGLE_CLOUD_PROJECT"] ?? env["GCLOUD_PROJECT"] });
    }
    case "s3":
      return createS3Source(location, createS3Client({ endpoint: config.sourceS3.endpoint, region: config.sourceS3.region, credentials: config.sourceS3.credentials }));
    case "file":
      return createFileSource({ dir: location.dir, url: location.url, hashes: createHashes });
  }
}

export function openDestination(config: ReplicateConfig): S3Destination {
  const s3 = createS3Client({ endpoint: config.destEndpoint, region: "auto", credentials: config.destCredentials });
  return createS3Destination({ bucket: config.dest.bucket, s3, endpoint: config.destEndpoint, credentials: config.destCredentials, describe: config.destVia === "edge" ? `the edge ${config.destEndpoint}` : config.destEndpoint });
}

/** Runs the replicator as configured; resolves with the process exit code. */
export async function runReplicate(config: ReplicateConfig, io: ReplicateIo): Promise<number> {
  const reporter: Reporter = createReporter({ json: config.json, stdout: io.stdout, stderr: io.stderr });
  reporter.log("info", "config", describeConfig(config));
  const source = await openSource(config, io.env);
  const dest = openDestination(config);
  const once = async (): Promise<RunSummary> => {
    const summary = await replicateOnce({ config, source, dest, reporter, signal: io.signal });
    reporter.summary(summary);
    return summary;
  };
  try {
    if (!config.schedule) return (await once()).failed > 0 ? 1 : 0;
    await runOnSchedule({
      expression: config.schedule,
      reporter,
      signal: io.signal,
      runOnce: async () => {
        await once();
      },
      isFatal: (error, run) => (error instanceof InputError && run === 1) || error instanceof InterruptedError,
    });
    return 0;
  } finally {
    reporter.close();
    await source.close();
    dest.close();
  }
}
