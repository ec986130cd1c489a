// Multipart bookkeeping the R2 binding does not keep: which uploads are open and which
// parts each has (for ListParts, ListMultipartUploads and Complete's checks). One
// Durable Object per bucket, SQLite-backed.
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env.ts";

export interface UploadRow {
  uploadId: string;
  key: string;
  initiatedAt: string;
  accessKeyId: string;
}

export interface PartRow {
  partNumber: number;
  etag: string;
  size: number;
  uploadedAt: string;
  checksum: string | null;
}

type SqlUpload = { upload_id: string; key: string; initiated_at: string; access_key_id: string };
type SqlPart = { part_number: number; etag: string; size: number; uploaded_at: string; checksum: string | null };

const toUpload = (r: SqlUpload): UploadRow => ({ uploadId: r.upload_id, key: r.key, initiatedAt: r.initiated_at, accessKeyId: r.access_key_id });
const toPart = (r: SqlPart): PartRow => ({ partNumber: r.part_number, etag: r.etag, size: r.size, uploadedAt: r.uploaded_at, checksum: r.checksum });

export class UploadLedger extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS uploads (
      upload_id TEXT PRIMARY KEY, key TEXT NOT NULL, initiated_at TEXT NOT NULL, access_key_id TEXT NOT NULL)`);
    ctx.storage.sql.exec("CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads (key, upload_id)");
    ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS parts (
      upload_id TEXT NOT NULL, part_number INTEGER NOT NULL, etag TEXT NOT NULL, size INTEGER NOT NULL,
      uploaded_at TEXT NOT NULL, checksum TEXT, PRIMARY KEY (upload_id, part_number))`);
  }

  async begin(upload: UploadRow): Promise<void> {
    this.ctx.storage.sql.exec("INSERT INTO uploads VALUES (?, ?, ?, ?)", upload.uploadId, upload.key, upload.initiatedAt, upload.accessKeyId);
  }

  async get(uploadId: string): Promise<UploadRow | null> {
    const row = this.ctx.storage.sql.exec<SqlUpload>("SELECT * FROM uploads WHERE upload_id = ?", uploadId).toArray()[0];
    return row ? toUpload(row) : null;
  }

  async recordPart(uploadId: string, part: PartRow): Promise<void> {
    this.ctx.storage.sql.exec(
      "INSERT OR REPLACE INTO parts VALUES (?, ?, ?, ?, ?, ?)",
      uploadId, part.partNumber, part.etag, part.size, part.uploadedAt, part.checksum,
    );
  }

  /** Parts after `afterPart`, at most `max` (plus whether more follow). */
  async parts(uploadId: string, afterPart: number, max: number): Promise<{ parts: PartRow[]; truncated: boolean }> {
    const rows = this.ctx.storage.sql
      .exec<SqlPart>("SELECT part_number, etag, size, uploaded_at, checksum FROM parts WHERE upload_id = ? AND part_number > ? ORDER BY part_number LIMIT ?", uploadId, afterPart, max + 1)
      .toArray()
      .map(toPart);
    return { parts: rows.slice(0, max), truncated: rows.length > max };
  }

  async finish(uploadId: string): Promise<void> {
    this.ctx.storage.sql.exec("DELETE FROM parts WHERE upload_id = ?", uploadId);
    this.ctx.storage.sql.exec("DELETE FROM uploads WHERE upload_id = ?", uploadId);
  }

  /** Open uploads in (key, upload id) order, after the markers, under a prefix. */
  async list(input: { prefix: string; keyMarker: string; uploadIdMarker: string; max: number }): Promise<{ uploads: UploadRow[]; truncated: boolean }> {
    const rows = this.ctx.storage.sql
      .exec<SqlUpload>(
        "SELECT * FROM uploads WHERE substr(key, 1, length(?)) = ? AND (key > ? OR (key = ? AND upload_id > ?)) ORDER BY key, upload_id LIMIT ?",
        input.prefix, input.prefix, input.keyMarker, input.keyMarker, input.uploadIdMarker, input.max + 1,
      )
      .toArray()
      .map(toUpload);
    return { uploads: rows.slice(0, input.max), truncated: rows.length > input.max };
  }
}
