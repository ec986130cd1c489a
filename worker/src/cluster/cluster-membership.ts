// One Durable Object per cluster: who is in the pool (peer address, capacity, last
// heartbeat, status figures) and the cluster's peer credential. Expiry is lazy: a member
// whose heartbeat is older than its TTL is left out of every answer (and pruned), so no
// alarm is needed. Member ids are the peer address, so a node that restarts within its TTL
// keeps its row and — rendezvous hashing being by id — its blocks.
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env.ts";
import { importEncryptionKey, openSecret, sealSecret } from "../keys/secret-box.ts";

export interface MemberInput {
  id: string;
  peer: string;
  capacityBytes: number;
  /** How long the member counts as live after this heartbeat. */
  ttlMs: number;
  figures: Record<string, number>;
}

export interface MemberView {
  id: string;
  peer: string;
  capacityBytes: number;
  joinedAt: string;
  lastSeenAt: string;
  figures: Record<string, number>;
}

/** The credential peers sign with: not a storage key, valid only on peer listeners. */
export interface ClusterCredential {
  accessKeyId: string;
  secretAccessKey: string;
}

type MemberRow = { id: string; peer: string; capacity_bytes: number; joined_ms: number; last_seen_ms: number; ttl_ms: number; figures: string };

function view(row: MemberRow): MemberView {
  return {
    id: row.id,
    peer: row.peer,
    capacityBytes: row.capacity_bytes,
    joinedAt: new Date(row.joined_ms).toISOString(),
    lastSeenAt: new Date(row.last_seen_ms).toISOString(),
    figures: JSON.parse(row.figures) as Record<string, number>,
  };
}

function randomToken(bytes: number): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(bytes)))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export class ClusterMembership extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS members (
      id TEXT PRIMARY KEY, peer TEXT NOT NULL, capacity_bytes INTEGER NOT NULL,
      joined_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL, ttl_ms INTEGER NOT NULL, figures TEXT NOT NULL
    )`);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS credential (access_key_id TEXT PRIMARY KEY, sealed_secret TEXT NOT NULL)");
  }

  /** The cluster's peer credential, minted on first use and sealed at rest like key secrets. */
  private async credential(): Promise<ClusterCredential> {
    const box = await importEncryptionKey(this.env.FERRY_KEY_ENCRYPTION_KEY);
    const row = this.ctx.storage.sql.exec<{ access_key_id: string; sealed_secret: string }>("SELECT * FROM credential").toArray()[0];
    if (row) return { accessKeyId: row.access_key_id, secretAccessKey: await openSecret(box, row.access_key_id, row.sealed_secret) };
    const accessKeyId = `FRYPOOL${randomToken(12).toUpperCase().replace(/[^A-Z0-9]/g, "0")}`;
    const secretAccessKey = randomToken(30);
    this.ctx.storage.sql.exec("INSERT INTO credential VALUES (?, ?)", accessKeyId, await sealSecret(box, accessKeyId, secretAccessKey));
    return { accessKeyId, secretAccessKey };
  }

  private live(nowMs: number): MemberView[] {
    this.ctx.storage.sql.exec("DELETE FROM members WHERE last_seen_ms + ttl_ms < ?", nowMs);
    return this.ctx.storage.sql.exec<MemberRow>("SELECT * FROM members ORDER BY id").toArray().map(view);
  }

  /** Join or heartbeat (the same call): upserts the member, answers the live list and the credential. */
  async heartbeat(input: MemberInput, nowMs: number): Promise<{ members: MemberView[]; credential: ClusterCredential }> {
    this.ctx.storage.sql.exec(
      `INSERT INTO members VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET peer = excluded.peer, capacity_bytes = excluded.capacity_bytes,
         last_seen_ms = excluded.last_seen_ms, ttl_ms = excluded.ttl_ms, figures = excluded.figures`,
      input.id, input.peer, input.capacityBytes, nowMs, nowMs, input.ttlMs, JSON.stringify(input.figures),
    );
    return { members: this.live(nowMs), credential: await this.credential() };
  }

  /** Leaves at once (SIGTERM); true when the member was present. */
  async leave(id: string): Promise<boolean> {
    return this.ctx.storage.sql.exec("DELETE FROM members WHERE id = ?", id).rowsWritten > 0;
  }

  async members(nowMs: number): Promise<MemberView[]> {
    return this.live(nowMs);
  }
}
