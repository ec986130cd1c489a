// The four agent paths: a real `ferry agent` process (CLI, --metadata-ttl indefinite, its
// --edge pointed at the shaper) read through its FUSE mount or its loopback S3 endpoint.
// Cold paths share one slot that every prepare() replaces with a fresh agent on an empty
// cache dir and a fresh mount; warm paths share one agent warmed once with `ferry warm`,
// so "warm" means NVMe-cache reads: the page cache is dropped before each run.
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../../scripts/lib/edge-process.ts";
import { startAgentProcess, type AgentProcess } from "../../test/helpers/agent-process.ts";
import { clientEnv, runOk } from "../../test/helpers/real-clients.ts";
import { unmount, within } from "./mounts.ts";
import { errorText, skippedPath, type BuiltPath, type PathEnv } from "./path-kit.ts";
import type { SampleLocation } from "./types.ts";

const GiB = 2 ** 30;

interface RunningAgent {
  agent: AgentProcess;
  /** The mount point, when the agent mounts. */
  mount: string | undefined;
  dir: string;
}

/** How a slot's agents differ from the plain ones: another key, more flags (per start). */
export interface SlotOptions {
  key?: PathEnv["nodeKey"];
  args?: () => Promise<string[]>;
}

/** One agent at a time per slot: start() always begins from an empty cache and mount. */
export function agentSlot(env: PathEnv, label: string, useMount: () => boolean, options: SlotOptions = {}) {
  let running: RunningAgent | undefined;
  let generation = 0;
  // Room for the whole data set with headroom; --min-free 0% because the scratch disk is shared with the data set itself.
  const cacheSize = `${Math.max(1, Math.ceil((env.dataSet.totalBytes * 1.5) / GiB))}GiB`;
  const stop = async () => {
    const current = running;
    running = undefined;
    if (!current) return;
    // The agent unmounts on SIGTERM; a hung one is killed and its mount removed lazily.
    const stopped = await within(current.agent.stop().then(() => true), 15_000);
    if (!stopped) await current.agent.kill9();
    if (current.mount && !(await unmount(current.mount))) {
      // Never recurse into a directory that is still a mount: leave it for the operator.
      env.log(`agent ${label}: could not unmount ${current.mount}`);
      return;
    }
    rmSync(current.dir, { recursive: true, force: true });
  };
  return {
    current: () => running,
    stop,
    async start(): Promise<RunningAgent> {
      await stop();
      generation++;
      const dir = join(env.workDir, `agent-${label}-${generation}`);
      const mount = useMount() ? join(dir, "mnt") : undefined;
      mkdirSync(mount ?? dir, { recursive: true });
      const extra = (await options.args?.()) ?? [];
      const args = ["--metadata-ttl", "indefinite", "--cache-size", cacheSize, "--min-free", "0%", ...extra, ...env.agentArgs, ...(mount ? ["--mount", mount] : [])];
      const agent = await startAgentProcess({ edgeUrl: env.originUrl, key: options.key ?? env.nodeKey, cacheDir: join(dir, "cache"), args });
      running = { agent, mount, dir };
      return running;
    },
  };
}

type Slot = ReturnType<typeof agentSlot>;

export function mountLocation(env: PathEnv, running: RunningAgent): SampleLocation {
  if (!running.mount) throw new Error("agent path: started without a mount");
  return { kind: "posix", root: join(running.mount, env.bucket, env.prefix.replace(/\/$/, "")) };
}

function s3Location(env: PathEnv, running: RunningAgent): SampleLocation {
  return { kind: "s3", endpoint: running.agent.url, bucket: env.bucket, prefix: env.prefix };
}

/** `ferry warm` through the CLI, as a user would, so the cache holds every block of the prefix. */
export async function warm(env: PathEnv, running: RunningAgent): Promise<void> {
  const started = performance.now();
  await runOk(process.execPath, [join(projectRoot, "bin", "ferry.js"), "warm", `s3://${env.bucket}/${env.prefix}`, "--agent", running.agent.url, "--json"], { env: clientEnv(undefined), timeoutMs: 6 * 3600_000 });
  env.log(`agent warm: cache filled with ${env.dataSet.files.length} files in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

/**
 * How the mount has served its reads so far (cumulative): opens passed through vs read
 * through FUSE, and READs answered on the event loop vs the reader thread. A warm mount
 * behind local disk shows here why.
 */
async function logMountCounters(env: PathEnv, running: RunningAgent, name: string): Promise<void> {
  const mount = ((await running.agent.status().catch(() => ({}))) as { mount?: MountCounters }).mount;
  if (!mount) return;
  const pt = mount.passthrough;
  env.log(
    `${name}: so far ${mount.fastOpens?.opens ?? 0} fast opens (${mount.fastOpens?.passthrough ?? 0} passthrough), ${pt?.opens ?? 0} other passthrough opens; ` +
      `READs on the event loop ${mount.requests?.["15"] ?? 0}, on the reader thread ${mount.readerReads?.reads ?? 0}; passthrough files ${pt?.files ?? 0} (the cache's own ${pt?.cacheFiles ?? 0})`,
  );
}

interface MountCounters {
  requests?: Record<string, number>;
  fastOpens?: { opens: number; passthrough: number };
  readerReads?: { reads: number; bytes: number };
  passthrough?: { files: number; cacheFiles: number; opens: number } | null;
}

/** Starts one agent with a mount to learn whether FUSE works here; the reason when it does not. */
async function probeMount(env: PathEnv, slot: Slot): Promise<string | undefined> {
  try {
    await slot.start();
    return undefined;
  } catch (error) {
    await slot.stop();
    return `the agent could not mount here: ${errorText(error)}`;
  }
}

export async function agentPaths(env: PathEnv): Promise<BuiltPath[]> {
  let mountWorks = true;
  const cold = agentSlot(env, "cold", () => mountWorks);
  const warmSlot = agentSlot(env, "warm", () => mountWorks);
  const mountSkip = await probeMount(env, warmSlot);
  if (mountSkip) {
    mountWorks = false;
    env.log(`agent mount paths skipped: ${mountSkip}`);
  }
  let warmed = false;
  const prepareCold = async (name: string) => {
    const running = await cold.start();
    env.dropCache(name);
    return running;
  };
  const prepareWarm = async (name: string) => {
    let running = warmSlot.current();
    if (!running) {
      running = await warmSlot.start();
      warmed = false;
    }
    if (!warmed) {
      await warm(env, running);
      warmed = true;
    } else if (name === "agent-mount-warm") await logMountCounters(env, running, name);
    env.dropCache(name);
    return running;
  };
  const origin = env.originLabel;
  const flags = env.agentArgs.length > 0 ? ` (${env.agentArgs.join(" ")})` : "";
  const describe = (via: string, state: string) => `ferry agent${flags} ${via}, ${state}; origin: ${origin}`;
  const closeBoth = async () => {
    await cold.stop();
    await warmSlot.stop();
  };
  const mountCold = "agent-mount-cold";
  const mountWarm = "agent-mount-warm";
  const mountColdText = describe("FUSE mount", "cold (fresh agent, empty cache dir, page cache dropped before each run)");
  const mountWarmText = describe("FUSE mount", "warm (whole set in the NVMe cache via `ferry warm`, page cache dropped before each run)");
  return [
    mountSkip
      ? skippedPath(mountCold, mountColdText, mountSkip)
      : { name: mountCold, description: mountColdText, prepare: async () => ({ location: mountLocation(env, await prepareCold(mountCold)) }), close: closeBoth, firstEpoch: true },
    mountSkip
      ? skippedPath(mountWarm, mountWarmText, mountSkip)
      : { name: mountWarm, description: mountWarmText, prepare: async () => ({ location: mountLocation(env, await prepareWarm(mountWarm)) }), close: closeBoth },
    {
      name: "agent-s3-cold",
      description: describe("loopback S3 endpoint (unsigned)", "cold (fresh agent, empty cache dir, page cache dropped before each run)"),
      prepare: async () => ({ location: s3Location(env, await prepareCold("agent-s3-cold")) }),
      close: closeBoth,
      firstEpoch: true,
    },
    {
      name: "agent-s3-warm",
      description: describe("loopback S3 endpoint (unsigned)", "warm (whole set in the NVMe cache via `ferry warm`, page cache dropped before each run)"),
      prepare: async () => ({ location: s3Location(env, await prepareWarm("agent-s3-warm")) }),
      close: closeBoth,
    },
  ];
}

