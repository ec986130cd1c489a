// Membership through the edge's per-cluster Durable Object: join and heartbeat are the same
// signed POST (peer address, capacity, status figures); the answer is the live member list
// and the cluster credential. Calls are SigV4-signed with the node key over the body's
// SHA-256. A failed heartbeat keeps the last list (peers that die are found by failures).
import { RequestSigner, sha256Hex, uriEncode, type Credentials } from "../../../s3/sigv4.ts";
import { nodeDigests } from "../../../s3/node-digests.ts";
import type { Logger } from "../log.ts";
import type { Membership } from "./membership.ts";
import { PoolJoinError } from "./pool-errors.ts";
import type { PeerMember } from "./rendezvous.ts";

export interface EdgeMembershipOptions {
  edge: URL;
  /** The node's own key; its policy must list the cluster. */
  nodeKey: Credentials;
  cluster: string;
  /** HOST:PORT peers reach this node's peer listener at; also its member id. */
  advertise: string;
  capacityBytes: number;
  /** Heartbeat period; a member is dropped after three missed. */
  heartbeatMs: number;
  /** Status figures sent with each heartbeat. */
  figures: () => Record<string, number>;
  logger: Logger;
}

interface JoinAnswer {
  memberId: string;
  credential: Credentials;
  members: PeerMember[];
}

export class EdgeMembership implements Membership {
  readonly selfId: string;
  private readonly options: EdgeMembershipOptions;
  private readonly signer: RequestSigner;
  private list: readonly PeerMember[] = [];
  private cred: Credentials | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** The heartbeat on the wire, if any: leave() waits for it, or it could re-add us after. */
  private inflight: Promise<void> | undefined;

  constructor(options: EdgeMembershipOptions) {
    this.options = options;
    this.selfId = options.advertise;
    this.signer = new RequestSigner(options.nodeKey, { digests: nodeDigests });
  }

  members(): readonly PeerMember[] {
    return this.list;
  }

  credential(): Credentials | undefined {
    return this.cred;
  }

  private url(path: string): URL {
    return new URL(`/_ferry/clusters/${uriEncode(this.options.cluster, { keepSlash: false })}${path}`, this.options.edge);
  }

  private async call(method: string, url: URL, body: string): Promise<Response> {
    const headers = await this.signer.sign({ method, url, payloadHash: await sha256Hex(body), headers: body ? { "content-type": "application/json" } : {} });
    return fetch(url, { method, headers, ...(body ? { body } : {}), signal: AbortSignal.timeout(Math.max(5_000, this.options.heartbeatMs * 2)) });
  }

  private async heartbeat(): Promise<void> {
    const body = JSON.stringify({ peer: this.options.advertise, capacityBytes: this.options.capacityBytes, ttlMs: this.options.heartbeatMs * 3, figures: this.options.figures() });
    const response = await this.call("POST", this.url("/members"), body);
    const text = await response.text();
    if (response.status === 401 || response.status === 403 || response.status === 400) {
      throw new PoolJoinError(`joining cluster failed: ${this.options.cluster}: ${response.status} ${text}`, { status: response.status });
    }
    if (!response.ok) throw new Error(`edge answered ${response.status}`);
    const answer = JSON.parse(text) as JoinAnswer;
    this.cred = answer.credential;
    if (!this.stopped) this.list = answer.members;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.inflight = this.heartbeat();
      this.inflight
        .catch((error: unknown) => this.options.logger.warn("heartbeat failed", { cluster: this.options.cluster, error: error instanceof Error ? error.message : String(error) }))
        .finally(() => this.schedule());
    }, this.options.heartbeatMs);
  }

  async start(): Promise<void> {
    // A refusal (key without the cluster) fails start-up; an unreachable edge does not.
    try {
      await this.heartbeat();
      this.options.logger.info("joined cluster", { cluster: this.options.cluster, memberId: this.selfId, members: this.list.length });
    } catch (error) {
      if (error instanceof PoolJoinError) throw error;
      this.options.logger.warn("cluster join deferred: edge unreachable", { cluster: this.options.cluster, error: error instanceof Error ? error.message : String(error) });
    }
    this.schedule();
  }

  async leave(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.list = this.list.filter((m) => m.id !== this.selfId);
    await this.inflight?.catch(() => undefined); // its failure was logged by the loop
    const response = await this.call("DELETE", this.url(`/members/${uriEncode(this.selfId, { keepSlash: false })}`), "");
    await response.arrayBuffer();
    this.options.logger.info("left cluster", { cluster: this.options.cluster, memberId: this.selfId, status: response.status });
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
