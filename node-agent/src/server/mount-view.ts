// Picks the POSIX view's FUSE front-end: the agent's own /dev/fuse connection
// (kernel-mount.ts: needs root to mount; passthrough for large cached files on Linux ≥ 6.9)
// or libfuse 2 through fuse-native (libfuse-mount.ts: mounts through fusermount, no
// passthrough). `auto` tries the first and falls back to the second, saying why.
import type { MountFactory } from "../main.ts";

export const mountView: MountFactory = async (input) => {
  if (input.driver !== "libfuse") {
    try {
      const { KernelMount } = await import("./kernel-mount.ts");
      const view = await KernelMount.mount(input);
      input.logger.info("mounted", { mountPoint: input.mountPoint, ...view.status() });
      return view;
    } catch (error) {
      if (input.driver === "kernel") throw error;
      input.logger.warn("mounting with the kernel driver failed; using libfuse", { error: error instanceof Error ? error.message : String(error) });
    }
  }
  const { mountLibfuse } = await import("./libfuse-mount.ts");
  return mountLibfuse(input);
};
