// Who is in the pool, seen from one agent: the live members (self included once joined)
// and the cluster credential peers sign with. Two sources implement it: the edge's
// membership object (edge-membership.ts) and a static list with health checks (below).
import type { Credentials } from "../../../s3/sigv4.ts";
import type { Logger } from "../log.ts";
import type { PeerMember } from "./rendezvous.ts";

export interface Membership {
  /** This node's member id (its advertised peer address). */
  readonly selfId: string;
  /** The live members now; changes take effect without a restart. */
  members(): readonly PeerMember[];
  /** The credential peer requests are signed and checked with; undefined until joined. */
  credential(): Credentials | undefined;
  /** Joins (first heartbeat or health round) and keeps the list fresh in the background. */
  start(): Promise<void>;
  /** Leaves at once, so peers stop routing here (SIGTERM). */
  leave(): Promise<void>;
  stop(): void;
}

export interface StaticMembershipOptions {
  selfId: string;
  /** HOST:PORT of every member, this node included (e.g. from a Slurm node list). */
  peers: string[];
  credential: Credentials;
  /** Health-check period. */
  intervalMs: number;
  timeoutMs: number;
  logger: Logger;
}

/**
 * A fixed member list; a peer that fails its health check is left out until it answers
 * again. Every member weighs the same: a static list says nothing about capacity.
 */
export class StaticMembership implements Membership {
  readonly selfId: string;
  private readonly options: StaticMembershipOptions;
  private readonly down = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private leaving = false;

  constructor(options: StaticMembershipOptions) {
    this.options = options;
    this.selfId = options.selfId;
  }

  members(): readonly PeerMember[] {
    return this.options.peers
      .filter((p) => !this.down.has(p) && !(this.leaving && p === this.selfId))
      .map((p) => ({ id: p, peer: p, capacityBytes: 1 }));
  }

  credential(): Credentials {
    return this.options.credential;
  }

  private async check(peer: string): Promise<void> {
    if (peer === this.selfId) return;
    try {
      const response = await fetch(`http://${peer}/_ferry/peer/health`, { signal: AbortSignal.timeout(this.options.timeoutMs) });
      await response.arrayBuffer();
      if (!response.ok) throw new Error(`status ${response.status}`);
      if (this.down.delete(peer)) this.options.logger.info("peer healthy again", { peer });
    } catch (error) {
      if (!this.down.has(peer)) this.options.logger.warn("peer failed its health check", { peer, error: error instanceof Error ? error.message : String(error) });
      this.down.add(peer);
    }
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      Promise.all(this.options.peers.map((p) => this.check(p))).finally(() => this.schedule()).catch(() => undefined);
    }, this.options.intervalMs);
  }

  async start(): Promise<void> {
    await Promise.all(this.options.peers.map((p) => this.check(p)));
    this.schedule();
  }

  async leave(): Promise<void> {
    // Peers find out through their health checks (the peer listener answers 503 now).
    this.leaving = true;
  }

  get isLeaving(): boolean {
    return this.leaving;
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
