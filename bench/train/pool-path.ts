// The pool path: a node joining a cluster in which another member already holds the data
// set (warmed with `ferry warm` while it was alone). Each run starts a fresh joiner with an
// empty cache and reads through its FUSE mount; blocks the holder still owns come from the
// holder as a peer, blocks the joiner now owns are taken over from the holder (their owner
// before), so R2 is read for metadata only. This is what a replaced or added GPU node sees.
import { freePort } from "../../test/helpers/local-edge.ts";
import { agentSlot, mountLocation, warm } from "./agent-paths.ts";
import type { BuiltPath, PathEnv } from "./path-kit.ts";

export const POOL_PATH = "agent-pool-peer";
const CLUSTER = "bench-train";
const MiB = 2 ** 20;

interface PoolFigures {
  members?: unknown[];
  peerBytes?: number;
  edgeBytes?: number;
  takenOverBlocks?: number;
}

export function poolPath(env: PathEnv, clusterKey: PathEnv["nodeKey"]): BuiltPath {
  const clusterArgs = async () => ["--cluster", CLUSTER, "--peer-listen", `127.0.0.1:${await freePort()}`, "--heartbeat", "1s"];
  const holder = agentSlot(env, "pool-holder", () => false, { key: clusterKey, args: clusterArgs });
  const joiner = agentSlot(env, "pool-joiner", () => true, { key: clusterKey, args: clusterArgs });
  const poolOf = async (agent: { status(): Promise<Record<string, unknown>> }) => ((await agent.status())["pool"] ?? {}) as PoolFigures;
  const waitForPair = async () => {
    const agents = [holder.current()?.agent, joiner.current()?.agent];
    const deadline = Date.now() + 30_000;
    for (;;) {
      const lists = await Promise.all(agents.map(async (a) => (a ? ((await poolOf(a)).members?.length ?? 0) : 0)));
      if (lists.every((n) => n === 2)) return;
      if (Date.now() > deadline) throw new Error(`${POOL_PATH}: the joiner and the holder did not see each other within 30 s (members ${lists.join(", ")})`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  /** What the last joiner read from where, logged before it goes. */
  const logJoiner = async () => {
    const running = joiner.current();
    if (!running) return;
    const figures = await poolOf(running.agent).catch((): PoolFigures => ({}));
    env.log(`${POOL_PATH}: the joiner read ${((figures.peerBytes ?? 0) / MiB).toFixed(1)} MiB from its peer (${figures.takenOverBlocks ?? 0} blocks taken over) and ${((figures.edgeBytes ?? 0) / MiB).toFixed(1)} MiB of block data from the origin`);
  };
  return {
    name: POOL_PATH,
    description: `ferry agent in a two-node cluster, FUSE mount of a fresh joiner (empty cache dir, page cache dropped before each run) whose peer holds the set warm: blocks come from the peer, not the origin; origin for metadata: ${env.originLabel}`,
    firstEpoch: true,
    async prepare() {
      if (!holder.current()) {
        const running = await holder.start();
        // Alone in the cluster, the holder owns every block: the warm leaves all of them in its cache.
        await warm(env, running);
      }
      await logJoiner();
      const running = await joiner.start();
      await waitForPair();
      env.dropCache(POOL_PATH);
      return { location: mountLocation(env, running) };
    },
    async close() {
      await logJoiner();
      await joiner.stop();
      await holder.stop();
    },
  };
}

