// The pool as an origin: decorates the edge origin so a block goes to its owner (weighted
// rendezvous over live members). The owner fetches from the edge; anyone else asks the
// owner, then the next choice, then the edge as a last resort — each peer attempt bounded
// by a timeout, a failing peer skipped for a while — so a reader never sees a peer's
// failure. Reads made on a peer's behalf are never forwarded twice. An owner's miss asks
// the runner-up first, only if it holds the block (only-if-cached): when a node joins, the
// blocks it now owns are in the cache of the node that owned them before, so a joining or
// replaced node fills from its peers instead of R2. A 504 costs one round trip on the
// cluster network, small beside an R2 read.
import type { AsyncLocalStorage } from "node:async_hooks";
import type { ListResult } from "../../../s3/listing-xml.ts";
import type { Logger } from "../log.ts";
import type { ListParams, ObjectInfo, ObjectOrigin, SmallObject } from "../origin/object-origin.ts";
import type { Membership } from "./membership.ts";
import type { Credentials } from "../../../s3/sigv4.ts";
import type { BlockRequest, PeerClient } from "./peer-client.ts";
import type { WarmRequest } from "./placement.ts";
import { PeerCorruptError } from "./pool-errors.ts";
import type { PoolStats } from "./pool-stats.ts";
import { blockKeyOf, rankOwners, type PeerMember } from "./rendezvous.ts";

export interface PoolOriginOptions {
  edge: ObjectOrigin;
  membership: Membership;
  peers: PeerClient;
  blockSizeBytes: number;
  servingPeer: AsyncLocalStorage<true>;
  /** Set while loading a block a warm or handoff asked for; a handoff names the peer to copy from. */
  warming: AsyncLocalStorage<WarmRequest>;
  stats: PoolStats;
  logger: Logger;
  /** Peers asked per block before falling back to the edge. Default 2. */
  peerAttempts?: number;
  /** How long a failed peer is skipped. Default 5 s. */
  suspectMs?: number;
  /** How long a fetched block stays in memory for requests that miss the cache write. Default 3 s. */
  recentMs?: number;
}

/** Memory held by recently fetched blocks, at most. */
const RECENT_BYTES = 128 * 2 ** 20;

export class PoolOrigin implements ObjectOrigin {
  private readonly o: PoolOriginOptions;
  private readonly suspects = new Map<string, number>();
  /**
   * Edge fetches in flight or just done, by block. The reader's singleflight ends when the
   * bytes arrive but its cache write lands later; an owner gets requests from every peer
   * in that gap, and without this each would be another R2 read.
   */
  private readonly recent = new Map<string, { data: Promise<Uint8Array>; until: number }>();

  constructor(options: PoolOriginOptions) {
    this.o = options;
  }

  listBuckets(): Promise<string[]> {
    return this.o.edge.listBuckets();
  }

  head(bucket: string, key: string): Promise<ObjectInfo | undefined> {
    return this.o.edge.head(bucket, key);
  }

  revalidate(bucket: string, key: string, etag: string): Promise<ObjectInfo | "unchanged" | undefined> {
    return this.o.edge.revalidate(bucket, key, etag);
  }

  list(bucket: string, params: ListParams): Promise<ListResult> {
    return this.o.edge.list(bucket, params);
  }

  getSmall(bucket: string, key: string, knownEtag?: string): Promise<SmallObject | "unchanged" | undefined> {
    return this.o.edge.getSmall(bucket, key, knownEtag);
  }

  private suspect(id: string): boolean {
    const until = this.suspects.get(id);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.suspects.delete(id);
    return false;
  }

  private async fromEdge(bucket: string, key: string, etag: string, offset: number, length: number): Promise<Uint8Array> {
    const blockKey = `${blockKeyOf(bucket, key, etag, Math.floor(offset / this.o.blockSizeBytes))}\n${length}`;
    const now = Date.now();
    const hit = this.recent.get(blockKey);
    // A copy: the reader owns what an origin returns.
    if (hit && hit.until > now) return (await hit.data).slice();
    const data = this.o.edge.readRange(bucket, key, etag, offset, length);
    const entry = { data, until: Number.POSITIVE_INFINITY };
    this.recent.delete(blockKey);
    this.recent.set(blockKey, entry);
    const maxEntries = Math.max(8, Math.floor(RECENT_BYTES / this.o.blockSizeBytes));
    for (const [k, v] of this.recent) {
      if (this.recent.size <= maxEntries && v.until > now) break;
      if (v !== entry) this.recent.delete(k);
      else break;
    }
    try {
      const bytes = await data;
      this.o.stats.edgeBytes += bytes.length;
      this.o.stats.edgeBlocks++;
      entry.until = Date.now() + (this.o.recentMs ?? 3_000);
      return bytes;
    } catch (error) {
      this.recent.delete(blockKey);
      throw error;
    }
  }

  private peerFailed(member: PeerMember, error: unknown, block: BlockRequest): void {
    if (error instanceof PeerCorruptError) this.o.stats.peerCorrupt++;
    else this.o.stats.peerErrors++;
    this.suspects.set(member.id, Date.now() + (this.o.suspectMs ?? 5_000));
    this.o.logger.warn("peer skipped", { peer: member.peer, bucket: block.bucket, key: block.key, index: Math.floor(block.offset / this.o.blockSizeBytes), error: error instanceof Error ? error.message : String(error) });
  }

  /** The block from the node that owned it before this one, if that node holds it. */
  private async fromPreviousOwner(previous: PeerMember | undefined, credential: Credentials | undefined, block: BlockRequest): Promise<Uint8Array | undefined> {
    if (!previous || !credential || this.suspect(previous.id)) return undefined;
    try {
      const data = await this.o.peers.fetchHeldBlock(previous.peer, credential, block);
      if (!data) return undefined;
      this.o.stats.peerBytes += data.length;
      this.o.stats.peerBlocks++;
      this.o.stats.takenOverBlocks++;
      return data;
    } catch (error) {
      this.peerFailed(previous, error, block);
      return undefined;
    }
  }

  /** A block this node owns: from its previous owner's cache, else the edge (counted as distinct bytes). */
  private async asOwner(ranked: PeerMember[], blockKey: string, block: BlockRequest): Promise<Uint8Array> {
    const taken = await this.fromPreviousOwner(ranked[1], this.o.membership.credential(), block);
    if (taken) return taken;
    const data = await this.fromEdge(block.bucket, block.key, block.etag, block.offset, block.length);
    this.o.stats.ownedRead(blockKey, data.length);
    return data;
  }

  async readRange(bucket: string, key: string, etag: string, offset: number, length: number): Promise<Uint8Array> {
    const bs = this.o.blockSizeBytes;
    const index = Math.floor(offset / bs);
    const blockKey = blockKeyOf(bucket, key, etag, index);
    const block = { bucket, key, etag, offset, length };
    if (offset % bs !== 0 || length > bs) return this.fromEdge(bucket, key, etag, offset, length);
    if (this.o.servingPeer.getStore()) {
      // A peer asked this node as the block's owner (or its fallback): never forwarded to
      // another owner, but a block this node took over may still sit with its previous owner.
      const ranked = rankOwners(blockKey, this.o.membership.members());
      if (ranked[0]?.id === this.o.membership.selfId) return this.asOwner(ranked, blockKey, block);
      const data = await this.fromEdge(bucket, key, etag, offset, length);
      this.o.stats.ownedRead(blockKey, data.length);
      return data;
    }
    const credential = this.o.membership.credential();
    const from = this.o.warming.getStore()?.from;
    if (from && credential) {
      // A leaving peer hands this block over: copy it from there, else read it like any miss.
      try {
        const data = await this.o.peers.fetchBlock(from, credential, block);
        this.o.stats.peerBytes += data.length;
        this.o.stats.peerBlocks++;
        this.o.stats.handoffBlocksReceived++;
        return data;
      } catch (error) {
        this.o.logger.warn("handoff copy failed; reading through the pool", { peer: from, bucket, key, index, error: error instanceof Error ? error.message : String(error) });
      }
    }
    const ranked = rankOwners(blockKey, this.o.membership.members());
    let failures = 0;
    for (const member of ranked) {
      if (member.id === this.o.membership.selfId) {
        if (failures) this.o.stats.fallbackBlocks++;
        // Only the first choice takes over from the runner-up: a fallback owner's runner-up is no one's previous owner.
        if (member === ranked[0]) return this.asOwner(ranked, blockKey, block);
        const data = await this.fromEdge(bucket, key, etag, offset, length);
        this.o.stats.ownedRead(blockKey, data.length);
        return data;
      }
      if (!credential || this.suspect(member.id)) continue;
      if (failures >= (this.o.peerAttempts ?? 2)) break;
      try {
        const data = await this.o.peers.fetchBlock(member.peer, credential, block);
        this.o.stats.peerBytes += data.length;
        this.o.stats.peerBlocks++;
        return data;
      } catch (error) {
        failures++;
        this.peerFailed(member, error, block);
      }
    }
    // No live owner answered (or no membership yet): the edge, once per block per node.
    if (failures) this.o.stats.fallbackBlocks++;
    return this.fromEdge(bucket, key, etag, offset, length);
  }
}
