// The pool's counters, sent with heartbeats and shown by `ferry status --cluster`. Distinct
// bytes are counted by owners (each block's requests all reach its owner), so summing them
// over members approximates the cluster's distinct bytes read; the set is bounded.

const MAX_TRACKED_BLOCKS = 1_000_000;

export class PoolStats {
  /** Data bytes this node fetched from the edge through the pool. */
  edgeBytes = 0;
  edgeBlocks = 0;
  /** Data bytes received from peers (checked). */
  peerBytes = 0;
  peerBlocks = 0;
  /** Data bytes served to peers. */
  servedBytes = 0;
  servedBlocks = 0;
  /** Blocks fetched from the edge because their owners failed (counted once per fill). */
  fallbackBlocks = 0;
  peerErrors = 0;
  peerCorrupt = 0;
  refusedPeerRequests = 0;
  /** Blocks loaded as a second (or later) owner of warmed data (--replicas). */
  replicaBlocks = 0;
  /** Blocks a leaving node copied to their next owners (--handoff), and blocks received that way. */
  handoffBlocksSent = 0;
  handoffBlocksReceived = 0;
  /** Blocks this node owns since it joined, copied from their owner before instead of R2. */
  takenOverBlocks = 0;
  /** only-if-cached requests answered 504 (this node did not hold the block). */
  notHeldAnswers = 0;
  distinctBytes = 0;
  private readonly owned = new Set<string>();

  /** A block this node owns was read (by itself or a peer): counts toward distinct bytes. */
  ownedRead(blockKey: string, bytes: number): void {
    if (this.owned.has(blockKey) || this.owned.size >= MAX_TRACKED_BLOCKS) return;
    this.owned.add(blockKey);
    this.distinctBytes += bytes;
  }

  servedToPeer(blockKey: string, bytes: number): void {
    this.servedBytes += bytes;
    this.servedBlocks++;
    this.ownedRead(blockKey, bytes);
  }

  figures(): Record<string, number> {
    const figures: Record<string, number> = {};
    for (const [name, value] of Object.entries(this)) if (typeof value === "number") figures[name] = value;
    return figures;
  }
}
