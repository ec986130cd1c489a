// The pool's error hierarchy: joining the membership, and asking a peer for a block. A
// peer error is never shown to a reader: the pool moves on to the next owner or the edge.

export class PoolError extends Error {
  override readonly name: string = "PoolError";
}

/** The edge refused this node's key for the cluster (policy lacks it, or bad signature). */
export class PoolJoinError extends PoolError {
  override readonly name = "PoolJoinError";
  readonly status: number;

  constructor(message: string, options: { status: number; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.status = options.status;
  }
}

/** A peer did not answer in time, refused, or is gone. */
export class PeerUnavailableError extends PoolError {
  override readonly name = "PeerUnavailableError";
}

/** A peer's bytes did not match the CRC32C it sent (or their length): bypassed. */
export class PeerCorruptError extends PoolError {
  override readonly name = "PeerCorruptError";
}
