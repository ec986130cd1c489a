// The one Durable Object that holds every key: SQLite rows with the sealed secret, the
// policy, expiry and revocation. Strongly consistent, so a revocation is final at once;
// edge isolates cache lookups briefly (see key-service.ts).
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env.ts";
import type { Policy } from "./policy.ts";

export interface KeyRecord {
  accessKeyId: string;
  name: string;
  sealedSecret: string;
  policy: Policy;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
}

type KeyRow = {
  access_key_id: string;
  name: string;
  sealed_secret: string;
  policy: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
};

function toRecord(row: KeyRow): KeyRecord {
  return {
    accessKeyId: row.access_key_id,
    name: row.name,
    sealedSecret: row.sealed_secret,
    policy: JSON.parse(row.policy) as Policy,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
  };
}

export class KeyRegistry extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS keys (
      access_key_id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      sealed_secret TEXT NOT NULL,
      policy TEXT NOT NULL,
      created_at TEXT NOT NULL,
      expires_at TEXT,
      revoked_at TEXT
    )`);
  }

  async put(record: KeyRecord): Promise<void> {
    this.ctx.storage.sql.exec(
      "INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?, ?)",
      record.accessKeyId, record.name, record.sealedSecret, JSON.stringify(record.policy), record.createdAt, record.expiresAt, record.revokedAt,
    );
  }

  async get(accessKeyId: string): Promise<KeyRecord | null> {
    const rows = this.ctx.storage.sql.exec<KeyRow>("SELECT * FROM keys WHERE access_key_id = ?", accessKeyId).toArray();
    return rows[0] ? toRecord(rows[0]) : null;
  }

  async list(): Promise<KeyRecord[]> {
    return this.ctx.storage.sql.exec<KeyRow>("SELECT * FROM keys ORDER BY created_at, access_key_id").toArray().map(toRecord);
  }

  /** Marks the key revoked; returns the record, or null when there is no such key. */
  async revoke(accessKeyId: string, when: string): Promise<KeyRecord | null> {
    this.ctx.storage.sql.exec("UPDATE keys SET revoked_at = COALESCE(revoked_at, ?) WHERE access_key_id = ?", when, accessKeyId);
    return this.get(accessKeyId);
  }
}
