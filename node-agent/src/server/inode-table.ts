// The mount's inodes as the kernel knows them: one node per tree path it has looked up (a
// LOOKUP reply or a READDIRPLUS entry each count one lookup), kept until the kernel has
// forgotten every one of those lookups. Ids are never reused, so a forgotten node's id can
// never name a different path.
import type { ObjectInfo } from "../origin/object-origin.ts";

export const ROOT_ID = 1n;

export interface Node {
  id: bigint;
  path: string;
  lookups: number;
  /** The version whose pages the kernel may hold for this inode (from its last FUSE-read open). */
  pagesEtag: string | undefined;
  /** Opens reading through FUSE, and opens passed through (the kernel allows one mode at a time per inode). */
  cachedOpens: number;
  passthroughOpens: number;
  /** The version passthrough opens of this inode read. */
  passthroughInfo: ObjectInfo | undefined;
  /** Opens answered on the reader thread (see markFastOpen) and the copy they pass through, once made. */
  fastOpen: boolean;
  /** Block files registered for READs answered on the reader thread, by block index. */
  readerBlocks: Map<number, string> | undefined;
  pinned: ObjectInfo | undefined;
  pinning: boolean;
}

function newNode(id: bigint, path: string, lookups: number): Node {
  return { id, path, lookups, pagesEtag: undefined, cachedOpens: 0, passthroughOpens: 0, passthroughInfo: undefined, fastOpen: false, readerBlocks: undefined, pinned: undefined, pinning: false };
}

export class InodeTable {
  /** Keyed by Number(id) (ids stay far below 2^53): bigint keys cost a hash each, and a READDIRPLUS adds thousands. */
  private readonly byId = new Map<number, Node>();
  private readonly byPath = new Map<string, Node>();
  private nextId = ROOT_ID + 1n;

  constructor() {
    const root = newNode(ROOT_ID, "/", 1);
    this.byId.set(Number(ROOT_ID), root);
    this.byPath.set("/", root);
  }

  get size(): number {
    return this.byId.size;
  }

  get(id: bigint): Node | undefined {
    return this.byId.get(Number(id));
  }

  /** The id of `path` if the kernel holds a lookup of it. */
  idOf(path: string): bigint | undefined {
    return this.byPath.get(path)?.id;
  }

  /** The node of `path`, made if new, counting one more kernel lookup of it. */
  looked(path: string): Node {
    let node = this.byPath.get(path);
    if (!node) {
      node = newNode(this.nextId++, path, 0);
      this.byId.set(Number(node.id), node);
      this.byPath.set(path, node);
    }
    node.lookups++;
    return node;
  }

  /** Counts `lookups` of node `id` forgotten; returns the node when none is left (it is out of the table then). The root is never forgotten. */
  forget(id: bigint, lookups: number): Node | undefined {
    const node = this.byId.get(Number(id));
    if (!node || id === ROOT_ID) return undefined;
    node.lookups -= lookups;
    if (node.lookups > 0) return undefined;
    this.byId.delete(Number(id));
    if (this.byPath.get(node.path) === node) this.byPath.delete(node.path);
    return node;
  }

  /** Whether `node` is still in the table (not forgotten since it was handed out). */
  holds(node: Node): boolean {
    return this.byId.get(Number(node.id)) === node;
  }
}
