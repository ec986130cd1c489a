// The copy set of bench/replicate.ts as a source both tools can read: a local folder
// (file://, rclone reads the path), or the in-process GCS emulator (gs://, rclone's gcs
// backend with --gcs-endpoint, anonymous). The emulator is seeded in memory, not over HTTP:
// seeding is setup, not what is measured.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { startGcsEmulator } from "../scripts/lib/gcs-emulator.ts";
import { freePort } from "../test/helpers/local-edge.ts";

export interface DatasetFile {
  key: string;
  bytes: Uint8Array;
}

export interface BenchSource {
  /** SOURCE for `ferry replicate`. */
  ferryUrl: string;
  /** Source argument for `rclone copy`, and the flags it needs. */
  rcloneRemote: string;
  rcloneFlags: string[];
  /** Extra environment for both tools (STORAGE_EMULATOR_HOST). */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startBenchSource(options: { kind: "file" | "gcs"; dir: string; files: DatasetFile[] }): Promise<BenchSource> {
  if (options.kind === "file") {
    for (const f of options.files) {
      mkdirSync(dirname(join(options.dir, f.key)), { recursive: true });
      writeFileSync(join(options.dir, f.key), f.bytes);
    }
    return { ferryUrl: `file://${options.dir}`, rcloneRemote: options.dir, rcloneFlags: [], env: {}, async stop() {} };
  }
  // A fixed port: the emulator writes its own port into mediaLink, which rclone follows.
  const emulator = await startGcsEmulator({ port: await freePort() });
  const bucket = "bench-source";
  for (const f of options.files) await emulator.putLarge(bucket, `copy-set/${f.key}`, f.bytes, "application/octet-stream");
  return {
    ferryUrl: `gs://${bucket}/copy-set/`,
    rcloneRemote: `:gcs:${bucket}/copy-set`,
    rcloneFlags: ["--gcs-endpoint", `${emulator.url}/storage/v1/`, "--gcs-anonymous"],
    env: { STORAGE_EMULATOR_HOST: emulator.url },
    stop: () => emulator.stop(),
  };
}
