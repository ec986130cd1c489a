// What the mount tests share: whether a path is a mount point now, and the cleanup after a
// file of them (the edge stopped, a mount a failed test left behind detached, the scratch
// dir removed).
import { readFileSync, rmSync } from "node:fs";
import type { LocalEdge } from "./local-edge.ts";
import { runOk } from "./real-clients.ts";

export function mounted(path: string): boolean {
  return readFileSync("/proc/mounts", "utf8").split("\n").some((line) => line.split(" ")[1] === path);
}

export async function cleanUpMountTests(options: { edge: LocalEdge | undefined; mountPoint: string; scratch: string }): Promise<void> {
  await options.edge?.stop();
  if (mounted(options.mountPoint)) await runOk("fusermount", ["-uz", options.mountPoint]).catch(() => undefined);
  rmSync(options.scratch, { recursive: true, force: true });
}
