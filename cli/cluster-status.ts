// `ferry status --cluster NAME [--json]`: the cluster's view from the edge (members, each
// one's cache use, hit ratio and bytes by source, origin amplification), fetched with a
// SigV4-signed GET by the caller's key, whose policy must list the cluster.
import { sha256Hex, signRequest } from "../s3/sigv4.ts";
import { formatBytes } from "./agent-client.ts";
import { CliError } from "./cli-error.ts";
import { callerCredentials, edgeUrl } from "./edge-config.ts";

interface ClusterView {
  cluster: string;
  members: Array<{ id: string; peer: string; capacityBytes: number; lastSeenAt: string; figures: Record<string, number> }>;
  totals: Record<string, number>;
  originAmplification: number | null;
}

export async function clusterStatus(cluster: string, json: boolean): Promise<void> {
  const url = new URL(`/_ferry/clusters/${encodeURIComponent(cluster)}`, edgeUrl());
  const headers = await signRequest({ method: "GET", url, credentials: callerCredentials(), payloadHash: await sha256Hex("") });
  let response: Response;
  try {
    response = await fetch(url, { headers });
  } catch (error) {
    throw new CliError(`cannot reach the edge at ${url.origin}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const body: unknown = await response.json().catch(() => undefined);
  if (!response.ok) {
    const message = (body as { error?: { message?: string } } | undefined)?.error?.message ?? "";
    throw new CliError(`edge refused the cluster status of ${cluster}: ${response.status} ${message}`.trim());
  }
  const view = body as ClusterView;
  if (json) {
    process.stdout.write(JSON.stringify(view) + "\n");
    return;
  }
  const f = (m: ClusterView["members"][number], k: string) => m.figures[k] ?? 0;
  const lines = [`cluster     ${view.cluster}  (${view.members.length} live members)`];
  for (const m of view.members) {
    lines.push(
      `  ${m.id.padEnd(22)} cache ${formatBytes(f(m, "cacheUsedBytes"))} of ${formatBytes(f(m, "cacheQuotaBytes"))}  hit ${(f(m, "hitRatio") * 100).toFixed(1)}%` +
        `  local ${formatBytes(f(m, "localBytes"))}  peer ${formatBytes(f(m, "peerBytes"))}  origin ${formatBytes(f(m, "edgeBytes"))}`,
    );
  }
  const t = view.totals;
  lines.push(`origin      ${formatBytes(t["edgeBytes"] ?? 0)} from R2 for ${formatBytes(t["distinctBytes"] ?? 0)} distinct: amplification ${view.originAmplification === null ? "n/a" : view.originAmplification.toFixed(2)}; ${t["fallbackBlocks"] ?? 0} fallback blocks; ${t["takenOverBlocks"] ?? 0} blocks taken over from previous owners`);
  process.stdout.write(lines.join("\n") + "\n");
}
