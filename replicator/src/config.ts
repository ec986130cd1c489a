// The replicator's configuration: flags and environment parsed once into a frozen,
// typed object. Every failure is a ConfigError naming the flag or variable to fix.
// Secrets never appear in `describeConfig` (what a run logs once at start).
import { parseByteSize } from "../../common/units.ts";
import { validate as validateCron } from "node-cron";
import { ConfigError } from "./errors.ts";
import { parseLocation, type BucketLocation, type Location } from "./locations.ts";
import { parseShard, type Shard } from "./copy/shard.ts";
import { MIN_PART_BYTES, MAX_PART_BYTES } from "./copy/part-size.ts";

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface ReplicateConfig {
  source: Location;
  /** For s3:// sources: endpoint (undefined = AWS), region and key. */
  sourceS3: { endpoint: string | undefined; region: string; credentials: Credentials | undefined };
  dest: BucketLocation & { scheme: "s3" };
  /** The edge (FERRY_EDGE_URL) or R2's S3 endpoint (--endpoint). */
  destEndpoint: string;
  destVia: "edge" | "endpoint";
  destCredentials: Credentials;
  /** node-cron expression; undefined = run once. */
  schedule: string | undefined;
  shard: Shard;
  /** Objects copied at once. Default 16. */
  concurrency: number;
  /** Parts of one large object uploaded at once. Default 4. */
  partsInFlight: number;
  /** Smallest part size; grown for objects that would need more than 10,000 parts. Default 16 MiB. */
  partSizeBytes: number;
  /** Objects larger than this go multipart. Default = partSizeBytes. */
  multipartThresholdBytes: number;
  /** Upper bound on bytes held in memory by all copies together. Default max(256 MiB, 2 parts). */
  memoryBudgetBytes: number;
  /** Source read rate limit, bytes per second; undefined = unlimited. */
  bandwidthBytesPerSecond: number | undefined;
  /** Attempts per object (checksum mismatch, source changed, transient errors). Default 3. */
  attempts: number;
  /** USD per GiB of source egress, for the cost report. Default 0.12 (GCS internet egress). */
  egressUsdPerGiB: number;
  dryRun: boolean;
  delete: boolean;
  json: boolean;
}

export interface ReplicateFlags {
  endpoint?: string | undefined;
  "source-endpoint"?: string | undefined;
  schedule?: string | undefined;
  shard?: string | undefined;
  concurrency?: string | undefined;
  "parts-in-flight"?: string | undefined;
  "part-size"?: string | undefined;
  "multipart-threshold"?: string | undefined;
  "memory-budget"?: string | undefined;
  bwlimit?: string | undefined;
  attempts?: string | undefined;
  "egress-price"?: string | undefined;
  "dry-run"?: boolean | undefined;
  delete?: boolean | undefined;
  json?: boolean | undefined;
}

const MiB = 1024 * 1024;
/** "16MiB", "16M" (binary), "16MB" (decimal), "1048576". */
export function parseSize(text: string, flag: string): number {
  const bytes = parseByteSize(text);
  if (bytes === undefined) throw new ConfigError(flag, `${flag} must be a size like 16MiB, 512K or 1048576, got "${text}"`);
  return bytes;
}

function wholeNumber(text: string | undefined, flag: string, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const value = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!(value >= min && value <= max)) throw new ConfigError(flag, `${flag} must be a whole number from ${min} to ${max}, got "${text}"`);
  return value;
}

function httpUrl(text: string, name: string): string {
  try {
    const url = new URL(text);
    if (url.protocol === "http:" || url.protocol === "https:") return url.toString().replace(/\/$/, "");
  } catch {
    // Reported below.
  }
  throw new ConfigError(name, `${name} must be an http(s) URL, got "${text}"`);
}

function credentialsFrom(env: NodeJS.ProcessEnv, idNames: string[], secretNames: string[]): Credentials | undefined {
  const accessKeyId = idNames.map((n) => env[n]).find(Boolean);
  const secretAccessKey = secretNames.map((n) => env[n]).find(Boolean);
  return accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined;
}

export function buildConfig(positionals: string[], flags: ReplicateFlags, env: NodeJS.ProcessEnv): Readonly<ReplicateConfig> {
  if (positionals.length !== 2) throw new ConfigError("SOURCE DEST", `expected SOURCE and DEST, got ${positionals.length} argument(s)`);
  const source = parseLocation(positionals[0] ?? "", "SOURCE");
  const destLocation = parseLocation(positionals[1] ?? "", "DEST");
  if (destLocation.scheme !== "s3") throw new ConfigError("DEST", "DEST must be s3://BUCKET/PREFIX");
  const dest = { ...destLocation, scheme: "s3" as const };

  const destVia = flags.endpoint ? "endpoint" : "edge";
  const destEndpoint = flags.endpoint ? httpUrl(flags.endpoint, "--endpoint") : httpUrl(env["FERRY_EDGE_URL"] ?? "http://127.0.0.1:8787", "FERRY_EDGE_URL");
  const destCredentials = credentialsFrom(env, ["FERRY_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"], ["FERRY_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"]);
  if (!destCredentials) {
    throw new ConfigError("FERRY_ACCESS_KEY_ID", `no key for ${dest.url}: set FERRY_ACCESS_KEY_ID and FERRY_SECRET_ACCESS_KEY (a key that may list, write and delete there, and write under .ferry/)`);
  }

  const sourceEndpointText = flags["source-endpoint"] ?? env["FERRY_SOURCE_ENDPOINT"];
  const sourceS3 = {
    endpoint: sourceEndpointText ? httpUrl(sourceEndpointText, flags["source-endpoint"] ? "--source-endpoint" : "FERRY_SOURCE_ENDPOINT") : undefined,
    region: env["FERRY_SOURCE_REGION"] ?? env["AWS_REGION"] ?? env["AWS_DEFAULT_REGION"] ?? (sourceEndpointText ? "auto" : "us-east-1"),
    credentials: credentialsFrom(env, ["FERRY_SOURCE_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"], ["FERRY_SOURCE_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"]),
  };
  if (source.scheme !== "s3" && flags["source-endpoint"]) throw new ConfigError("--source-endpoint", "--source-endpoint only applies to s3:// sources");
  if (source.scheme === "s3" && !sourceS3.credentials) {
    throw new ConfigError("FERRY_SOURCE_ACCESS_KEY_ID", `no key for ${source.url}: set FERRY_SOURCE_ACCESS_KEY_ID and FERRY_SOURCE_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)`);
  }

  const schedule = flags.schedule?.trim() || undefined;
  if (schedule !== undefined && !validateCron(schedule)) throw new ConfigError("--schedule", `--schedule is not a cron expression: "${schedule}" (e.g. "*/15 * * * *")`);

  const partSizeBytes = flags["part-size"] === undefined ? 16 * MiB : parseSize(flags["part-size"], "--part-size");
  if (partSizeBytes < MIN_PART_BYTES || partSizeBytes > MAX_PART_BYTES) throw new ConfigError("--part-size", `--part-size must be between 5MiB and 5GiB (R2's part limits), got ${flags["part-size"]}`);
  const multipartThresholdBytes = flags["multipart-threshold"] === undefined ? partSizeBytes : parseSize(flags["multipart-threshold"], "--multipart-threshold");
  if (multipartThresholdBytes > 5 * 1024 ** 3) throw new ConfigError("--multipart-threshold", "--multipart-threshold must be at most 5GiB (the largest single PUT)");
  const partsInFlight = wholeNumber(flags["parts-in-flight"], "--parts-in-flight", 4, 1, 64);
  const memoryBudgetBytes = flags["memory-budget"] === undefined ? Math.max(256 * MiB, 2 * partSizeBytes) : parseSize(flags["memory-budget"], "--memory-budget");
  if (memoryBudgetBytes < partSizeBytes) throw new ConfigError("--memory-budget", `--memory-budget must hold at least one part (${partSizeBytes} bytes)`);
  // A single PUT is buffered whole (it is sent only once its checksums matched).
  if (multipartThresholdBytes > memoryBudgetBytes) throw new ConfigError("--multipart-threshold", `--multipart-threshold must not exceed --memory-budget (${memoryBudgetBytes} bytes): objects below it are buffered whole`);
  const bandwidthBytesPerSecond = flags.bwlimit === undefined ? undefined : parseSize(flags.bwlimit, "--bwlimit");
  if (bandwidthBytesPerSecond !== undefined && bandwidthBytesPerSecond < 1024) throw new ConfigError("--bwlimit", "--bwlimit must be at least 1KiB (bytes per second)");
  const egressText = flags["egress-price"];
  const egressUsdPerGiB = egressText === undefined ? 0.12 : Number(egressText);
  if (!Number.isFinite(egressUsdPerGiB) || egressUsdPerGiB < 0 || (egressText !== undefined && !/^\d*\.?\d+$/.test(egressText))) {
    throw new ConfigError("--egress-price", `--egress-price must be USD per GiB like 0.12, got "${egressText ?? ""}"`);
  }

  return Object.freeze({
    source,
    sourceS3,
    dest,
    destEndpoint,
    destVia,
    destCredentials,
    schedule,
    shard: parseShard(flags.shard),
    concurrency: wholeNumber(flags.concurrency, "--concurrency", 16, 1, 256),
    partsInFlight,
    partSizeBytes,
    multipartThresholdBytes,
    memoryBudgetBytes,
    bandwidthBytesPerSecond,
    attempts: wholeNumber(flags.attempts, "--attempts", 3, 1, 20),
    egressUsdPerGiB,
    dryRun: flags["dry-run"] ?? false,
    delete: flags.delete ?? false,
    json: flags.json ?? false,
  });
}

/** The effective configuration without secrets, for the run's first log line. */
export function describeConfig(config: ReplicateConfig): Record<string, unknown> {
  return {
    source: config.source.url,
    sourceEndpoint: config.source.scheme === "s3" ? (config.sourceS3.endpoint ?? "aws") : undefined,
    dest: config.dest.url,
    destEndpoint: config.destEndpoint,
    destVia: config.destVia,
    destAccessKeyId: config.destCredentials.accessKeyId,
    schedule: config.schedule,
    shard: `${config.shard.index}/${config.shard.count}`,
    concurrency: config.concurrency,
    partsInFlight: config.partsInFlight,
    partSizeBytes: config.partSizeBytes,
    multipartThresholdBytes: config.multipartThresholdBytes,
    memoryBudgetBytes: config.memoryBudgetBytes,
    bandwidthBytesPerSecond: config.bandwidthBytesPerSecond,
    attempts: config.attempts,
    egressUsdPerGiB: config.egressUsdPerGiB,
    dryRun: config.dryRun,
    delete: config.delete,
  };
}
