// SigV4's digests on the calling thread, for Node processes (the agent, the replicator, the
// benches): RequestSigner's `digests` option. Not imported by the Worker (no node:crypto there).
import { createHash, createHmac } from "node:crypto";
import type { SyncDigests } from "./sigv4.ts";

export const nodeDigests: SyncDigests = {
  sha256Hex: (data) => createHash("sha256").update(data, "utf8").digest("hex"),
  hmacSha256: (key, data) => createHmac("sha256", key).update(data, "utf8").digest(),
};
