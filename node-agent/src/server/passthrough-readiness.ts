// Getting the kernel mount's files ready to pass through: when the kernel learns of a file
// (a LOOKUP, a READDIRPLUS entry) and after READs that may have completed its blocks. Small
// files of an immutable dataset get opens answered on the reader thread and a pinned
// passthrough copy once wholly cached; larger ones get their passthrough file made once
// wholly cached. Blocks of a read just answered land a moment after it, hence a few retries.
import type { FileAttributes, FileTree } from "./file-tree.ts";
import type { KernelSession } from "./fuse-kernel/session.ts";
import type { InodeTable, Node } from "./inode-table.ts";
import type { PassthroughFiles } from "./passthrough-files.ts";
import type { ObjectReader } from "../read/object-reader.ts";

/** How long a LOOKUP (or a READDIRPLUS reply) waits for the passthrough files of wholly cached files (made from their blocks: a few ms). */
export const LOOKUP_PIN_WAIT_MS = 50;
/** Tries to start a passthrough copy while the blocks of a read just answered land (200 ms apart). */
const COPY_ATTEMPTS = 5;

/** Resolves when `p` settles or after `ms`, whichever is first (never rejects). */
export function settledWithin(p: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    p.then(
      () => (clearTimeout(timer), resolve()),
      () => (clearTimeout(timer), resolve()),
    );
  });
}

export interface PassthroughReadinessInput {
  tree: FileTree;
  reader: ObjectReader;
  session: KernelSession;
  inodes: InodeTable;
  /** Undefined when the connection cannot pass files through. */
  passthrough: PassthroughFiles | undefined;
  /** Files from this size up may be passed through as their own files (and so never take the fast open path). */
  passthroughMinBytes: number;
}

export class PassthroughReadiness {
  private readonly input: PassthroughReadinessInput;

  constructor(input: PassthroughReadinessInput) {
    this.input = input;
  }

  /**
   * Gets a file the kernel just learned of ready for its opens; what to wait for (briefly)
   * so that the open which follows passes through, if anything. In page-cache mode no open
   * comes. A file only listed (READDIRPLUS) and not wholly cached starts nothing here: the
   * READs that fill it do, so a walk of 100,000 uncached files starts no retries.
   */
  forOpens(node: Node, attributes: FileAttributes, how: { listed: boolean }): Promise<void> | undefined {
    const { tree, reader, session, passthrough, passthroughMinBytes } = this.input;
    if (attributes.kind !== "file") return undefined;
    const info = tree.knownVersion(node.path);
    const whole = info !== undefined && reader.holdsWhole(info);
    if (tree.immutable && !session.kernelOpens && attributes.size < passthroughMinBytes && !node.fastOpen) {
      node.fastOpen = session.markFastOpen(node.id);
      const pinning = node.fastOpen && (whole || !how.listed) ? this.pin(node) : undefined;
      return whole ? pinning : undefined;
    }
    if (how.listed && !whole) return undefined;
    this.prepare(node, { retry: !how.listed });
    return info && passthrough?.whenMade(info);
  }

  /**
   * Pins a passthrough copy for a fast-open inode once its object is wholly cached, retrying
   * while its blocks land. One try (with its retries) at a time per inode: `pinning` lasts
   * until it ends.
   */
  pin(node: Node, attempt = 0): Promise<void> {
    const { tree, session, inodes, passthrough } = this.input;
    if (!passthrough || (node.pinning && attempt === 0)) return Promise.resolve();
    const info = tree.knownVersion(node.path);
    node.pinning = !node.pinned && info !== undefined;
    if (!node.pinning || !info) return Promise.resolve();
    return passthrough.pin(info).then(
      (id) => {
        if (typeof id !== "number") {
          if (id === "not-cached" && attempt < COPY_ATTEMPTS && inodes.holds(node)) setTimeout(() => void this.pin(node, attempt + 1), 200).unref();
          else node.pinning = false;
          return;
        }
        node.pinning = false;
        if (!inodes.holds(node)) return passthrough.unpin(info);
        node.pinned = info;
        session.setFastBacking(node.id, id);
      },
      () => {
        node.pinning = false;
      },
    );
  }

  /** Starts the passthrough file of a large file's object once it is wholly cached; with `retry`, asks again while its blocks land. */
  prepare(node: Node, options: { retry: boolean }, attempt = 0): void {
    const { tree, inodes, passthrough, passthroughMinBytes } = this.input;
    const info = tree.knownVersion(node.path);
    if (!passthrough || !info || info.size < passthroughMinBytes || passthrough.prepare(info) !== "not-cached") return;
    if (options.retry && attempt < COPY_ATTEMPTS && inodes.holds(node)) setTimeout(() => this.prepare(node, options, attempt + 1), 200).unref();
  }
}
