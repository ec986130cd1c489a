// What users mount instead of Ferry: rclone's VFS cache (`rclone mount --vfs-cache-mode
// full`) and s3fs-fuse, both over the shaper-fronted edge with a read-only key. Both are
// measured cold: every prepare() unmounts, starts a fresh process on a fresh mount point
// (rclone: an empty --cache-dir too) and drops the page cache, so each run is a first epoch.
// The mount process is a foreground child the bench owns (no --daemon), so close() can
// always find and stop it; unmounting is lazy (`fusermount -uz`) so a busy mount goes too.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { clientEnv } from "../../test/helpers/real-clients.ts";
import { stopChild, unmount, waitForListing } from "./mounts.ts";
import { errorText, skippedPath, type BuiltPath, type PathEnv } from "./path-kit.ts";

interface MountCommand {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

interface Mounter {
  name: string;
  description: string;
  /** Why this tool cannot run here, checked before any mount is tried. */
  missing(): string | undefined;
  /**
   * The command that mounts the data set's prefix (not the bucket: a training key may list
   * only inside its prefix) at `mount`, using the fresh scratch dir `dir`, in the foreground.
   */
  command(mount: string, dir: string): MountCommand;
}

function commandExists(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

function fuseMissing(tool: string): string | undefined {
  if (!commandExists(tool)) return `${tool} is not installed`;
  if (!existsSync("/dev/fuse")) return "no /dev/fuse on this machine";
  if (!commandExists("fusermount") && !commandExists("fusermount3")) return "fusermount is not installed";
  return undefined;
}

function rcloneMounter(env: PathEnv): Mounter {
  return {
    name: "rclone-vfs",
    description: `rclone mount --vfs-cache-mode full (rclone ${rcloneVersion()}), cold: fresh VFS cache dir and mount each run, one epoch per run (a second would come from the VFS cache), page cache dropped; origin: ${env.originLabel}`,
    missing: () => fuseMissing("rclone"),
    command(mount, dir) {
      const cacheDir = join(dir, "vfs-cache");
      mkdirSync(cacheDir, { recursive: true });
      return {
        command: "rclone",
        args: ["mount", `ferry:${env.bucket}/${env.prefix}`, mount, "--vfs-cache-mode", "full", "--cache-dir", cacheDir, "--read-only", "--config", "/dev/null"],
        // The remote lives only in the environment, so no rclone.conf is read or written.
        env: clientEnv(undefined, {
          RCLONE_CONFIG_FERRY_TYPE: "s3",
          RCLONE_CONFIG_FERRY_PROVIDER: "Other",
          RCLONE_CONFIG_FERRY_ENDPOINT: env.originUrl,
          RCLONE_CONFIG_FERRY_REGION: "auto",
          RCLONE_CONFIG_FERRY_FORCE_PATH_STYLE: "true",
          RCLONE_CONFIG_FERRY_ACCESS_KEY_ID: env.readKey.accessKeyId,
          RCLONE_CONFIG_FERRY_SECRET_ACCESS_KEY: env.readKey.secretAccessKey,
        }),
      };
    },
  };
}

function rcloneVersion(): string {
  const out = spawnSync("rclone", ["version"], { encoding: "utf8", env: clientEnv(undefined) });
  return /rclone (v[\w.-]+)/.exec(out.stdout ?? "")?.[1] ?? "?";
}

function s3fsMounter(env: PathEnv): Mounter {
  return {
    name: "s3fs",
    description: `s3fs-fuse (Debian s3fs, defaults: no local cache), fresh mount each run, one epoch per run (a second would come from the page cache), page cache dropped; origin: ${env.originLabel}`,
    missing: () => fuseMissing("s3fs"),
    command(mount, dir) {
      // s3fs insists that its password file is private. It checks the bucket at start-up by
      // listing its root, so it needs the bucket-wide node key (a prefix key is refused).
      const passwd = join(dir, "passwd-s3fs");
      writeFileSync(passwd, `${env.nodeKey.accessKeyId}:${env.nodeKey.secretAccessKey}\n`, { mode: 0o600 });
      chmodSync(passwd, 0o600);
      const options = [`url=${env.originUrl}`, "use_path_request_style", `passwd_file=${passwd}`, "ro", "sigv4"];
      return { command: "s3fs", args: [`${env.bucket}:/${env.prefix.replace(/\/$/, "")}`, mount, "-f", "-o", options.join(",")], env: clientEnv(undefined) };
    },
  };
}

/** One FUSE tool's path: a fresh mount per prepare(), everything stopped in close(). */
function mountedPath(env: PathEnv, mounter: Mounter): BuiltPath & { probe(): Promise<string | undefined> } {
  let child: ChildProcess | undefined;
  let current: { mount: string; dir: string } | undefined;
  let generation = 0;
  const teardown = async () => {
    const mounted = current;
    current = undefined;
    let unmounted = !mounted || (await unmount(mounted.mount));
    await stopChild(child);
    child = undefined;
    // Once its process is gone a stuck mount is only a dead entry: try once more.
    if (!unmounted && mounted) unmounted = await unmount(mounted.mount);
    // Never recurse into a directory that is still a mount: leave it for the operator.
    if (!unmounted) env.log(`${mounter.name}: could not unmount ${mounted?.mount ?? ""}`);
    else if (mounted) rmSync(mounted.dir, { recursive: true, force: true });
  };
  const mountFresh = async () => {
    await teardown();
    generation++;
    const dir = join(env.workDir, `${mounter.name}-${generation}`);
    const mount = join(dir, "mnt");
    mkdirSync(mount, { recursive: true });
    current = { mount, dir };
    const { command, args, env: childEnv } = mounter.command(mount, dir);
    let output = "";
    const started = spawn(command, args, { env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
    child = started;
    started.stdout.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-8000)));
    started.stderr.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-8000)));
    await new Promise<void>((resolve, reject) => {
      started.once("spawn", () => resolve());
      started.once("error", reject);
    });
    await waitForListing({ mount, subdir: ".", child: started, output: () => output, timeoutMs: 60_000 });
    return mount;
  };
  return {
    name: mounter.name,
    description: mounter.description,
    async prepare() {
      const root = await mountFresh();
      env.dropCache(mounter.name);
      return { location: { kind: "posix", root } };
    },
    close: teardown,
    async probe() {
      try {
        await mountFresh();
        return undefined;
      } catch (error) {
        return `${mounter.name} mount failed: ${errorText(error)}`;
      } finally {
        await teardown();
      }
    },
  };
}

/** rclone-vfs and s3fs, each probed once with a real mount; a tool that is missing or refuses comes back skipped. */
export async function fusePaths(env: PathEnv): Promise<BuiltPath[]> {
  const paths: BuiltPath[] = [];
  for (const mounter of [rcloneMounter(env), s3fsMounter(env)]) {
    const missing = mounter.missing();
    if (missing) {
      env.log(`${mounter.name} skipped: ${missing}`);
      paths.push(skippedPath(mounter.name, mounter.description, missing));
      continue;
    }
    const path = mountedPath(env, mounter);
    const failed = await path.probe();
    if (failed) {
      env.log(`${mounter.name} skipped: ${failed}`);
      paths.push(skippedPath(mounter.name, mounter.description, failed));
    } else paths.push({ name: path.name, description: path.description, prepare: path.prepare, close: path.close, firstEpoch: true });
  }
  return paths;
}
