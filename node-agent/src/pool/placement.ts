// The pool's answer to "keep this block?": its owner keeps it, and so do the next owners
// when a warm asks them to (replicas of warmed or pinned data); any other node keeps a
// near copy within --near-cache, least recently used out first, or nothing at all.
import type { AsyncLocalStorage } from "node:async_hooks";
import type { BlockId } from "../cache/block-cache.ts";
import { NearCopies, type BlockPlacement, type Placement } from "../read/block-placement.ts";
import type { Membership } from "./membership.ts";
import { blockKeyOf, rankOwners } from "./rendezvous.ts";

/** Set while this node loads a block because a warm (or a leaving peer's handoff) asked it to. */
export interface WarmRequest {
  /** A peer to copy the block from first (the owner that already holds it). */
  from?: string;
}

export class PoolPlacement implements BlockPlacement {
  private readonly membership: Membership;
  private readonly servingPeer: AsyncLocalStorage<true>;
  private readonly warming: AsyncLocalStorage<WarmRequest>;
  readonly near: NearCopies;

  constructor(options: { membership: Membership; servingPeer: AsyncLocalStorage<true>; warming: AsyncLocalStorage<WarmRequest>; nearCacheBytes: number }) {
    this.membership = options.membership;
    this.servingPeer = options.servingPeer;
    this.warming = options.warming;
    this.near = new NearCopies(options.nearCacheBytes);
  }

  placeOf(id: BlockId): Placement {
    // A peer asked for it, or a warm did: this node is one of its owners.
    if (this.servingPeer.getStore() || this.warming.getStore()) return "own";
    const members = this.membership.members();
    const owner = rankOwners(blockKeyOf(id.bucket, id.key, id.etag, id.index), members)[0];
    // Not joined yet (or alone): everything is this node's.
    if (!owner || owner.id === this.membership.selfId) return "own";
    return this.near.boundBytes > 0 ? "near" : "pass";
  }

  admitNear(id: BlockId, bytes: number): BlockId[] {
    return this.near.admit(id, bytes);
  }

  touchNear(id: BlockId): void {
    this.near.touch(id);
  }
}
