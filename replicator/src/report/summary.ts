// A run's result: counts, bytes, time, and what the one-time egress cost next to what
// reading the same bytes from the source cloud would cost on every training run, per
// cluster. Prices are USD per GiB (GCS internet egress is $0.12/GiB at list price).
import { formatBytes } from "../../../common/units.ts";

export interface RunSummary {
  type: "summary";
  source: string;
  dest: string;
  shard: string;
  dryRun: boolean;
  /** Source objects in this shard. */
  listed: number;
  copied: number;
  /** Unchanged plus same-content objects: nothing read, nothing written. */
  skipped: number;
  /** Skipped because the bytes are identical though the source version changed. */
  sameContent: number;
  failed: number;
  deleted: number;
  /** Copied objects whose source declares no checksum: verified only against the bytes read. */
  unverified: number;
  /** Bytes of the objects copied. */
  bytes: number;
  /** Bytes read from the source, retries included (what egress is billed on). */
  sourceBytesRead: number;
  /** Bytes of every source object in this shard: what one full read of the dataset moves. */
  datasetBytes: number;
  seconds: number;
  bytesPerSecond: number;
  egressUsdPerGiB: number;
  /** This run's one-time egress. */
  egressUsd: number;
  /** Reading the whole dataset from the source once, per training run, per cluster. */
  egressUsdPerTrainingRunWithoutFerry: number;
  staleUploadsAborted: number;
  manifest: { key: string; objects: number; written: boolean } | undefined;
  /** Requests sent to the destination, by operation. */
  destRequests: Record<string, number>;
  errors: Array<{ key: string; error: string }>;
}

const GiB = 1024 ** 3;

export function egressUsd(bytes: number, usdPerGiB: number): number {
  return Math.round((bytes / GiB) * usdPerGiB * 1e6) / 1e6;
}

export { formatBytes };

function human(bytes: number): string {
  return formatBytes(bytes);
}

/** The summary as a few lines of plain text (stdout without --json). */
export function formatSummary(s: RunSummary): string {
  const lines = [
    `${s.dryRun ? "dry run: would copy" : "copied"} ${s.copied} object(s) (${human(s.bytes)}), skipped ${s.skipped}${s.sameContent ? ` (${s.sameContent} same content, new version)` : ""}, failed ${s.failed}${s.deleted ? `, deleted ${s.deleted}` : ""} in ${s.seconds.toFixed(1)} s${s.bytes > 0 && !s.dryRun ? ` (${human(s.bytesPerSecond)}/s)` : ""}`,
    `  ${s.source} → ${s.dest}${s.shard !== "0/1" ? ` [shard ${s.shard}]` : ""}`,
  ];
  if (s.unverified > 0) lines.push(`  ${s.unverified} object(s) had no source checksum: verified against the bytes read, not against the source`);
  if (s.egressUsdPerGiB > 0 && s.datasetBytes > 0) {
    lines.push(`  egress: $${s.egressUsd.toFixed(2)} once for this run; reading these ${human(s.datasetBytes)} from the source instead would cost $${s.egressUsdPerTrainingRunWithoutFerry.toFixed(2)} per training run per cluster`);
  }
  if (s.manifest) lines.push(`  manifest: s3://${s.dest.replace(/^s3:\/\//, "").split("/")[0]}/${s.manifest.key} (${s.manifest.objects} objects${s.manifest.written ? ", updated" : ", unchanged"})`);
  for (const e of s.errors.slice(0, 10)) lines.push(`  failed: ${e.key}: ${e.error}`);
  if (s.errors.length > 10) lines.push(`  … and ${s.errors.length - 10} more failures (see the log)`);
  return lines.join("\n");
}
