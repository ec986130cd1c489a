// What every data path builder shares: where the data set lives on the edge, the shaper's
// URL and a read-only key, a scratch directory, and a page-cache drop that is logged (and
// remembered) rather than thrown, because containers often refuse it.
import type { TestKey } from "../../test/helpers/local-edge.ts";
import { dropPageCache } from "./page-cache.ts";
import type { DataPath, DataSet } from "./types.ts";

export type BuiltPath = DataPath & { skipped?: string };

export interface PathEnv {
  dataSet: DataSet;
  bucket: string;
  /** "train/<workload>/": the key prefix every path reads below. */
  prefix: string;
  /** The shaper in front of the edge: every path's origin. */
  originUrl: string;
  /** What the origin is, for descriptions, e.g. "edge behind a shaper (30 ms, 100 MiB/s per stream)". */
  originLabel: string;
  /** Read and list on the prefix: what a training job's credentials would allow. */
  readKey: TestKey;
  /**
   * The agent's node key: read and list on the whole bucket, as a node key is issued. (A key
   * scoped to the prefix cannot stat the parent directories on the agent's mount: HEAD of
   * "train" is outside the grant and the mount answers EACCES.)
   */
  nodeKey: TestKey;
  workDir: string;
  /** Extra `ferry agent` flags (`--agent-arg`), appended to the agent paths' own. */
  agentArgs: readonly string[];
  log: (line: string) => void;
  /** Drops the page cache (logged with `why`); false when the machine does not allow it. */
  dropCache(why: string): boolean;
}

export function pageCacheDropper(log: (line: string) => void): (why: string) => boolean {
  return (why) => {
    const dropped = dropPageCache();
    log(`${why}: page cache ${dropped ? "dropped" : "NOT dropped (needs root and a writable /proc/sys/vm)"}`);
    return dropped;
  };
}

/** A path that cannot run here: listed with its reason so the output says why it is missing. */
export function skippedPath(name: string, description: string, reason: string): BuiltPath {
  return {
    name,
    description,
    skipped: reason,
    async prepare() {
      throw new Error(`data path skipped: ${name}: ${reason}`);
    },
    async close() {},
  };
}

export function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n").slice(0, 3).join(" ").slice(0, 400);
}
