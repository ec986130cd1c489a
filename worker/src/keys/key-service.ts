// Issuing and resolving keys. Lookups are cached per isolate for LOOKUP_CACHE_MS so the
// hot path costs no Durable Object round trip; that bounds revocation delay (< 60 s).
import type { Env } from "../env.ts";
import type { KeyRecord } from "./key-registry.ts";
import type { Policy } from "./policy.ts";
import { importEncryptionKey, openSecret, sealSecret } from "./secret-box.ts";

export const LOOKUP_CACHE_MS = 30_000;

export interface ResolvedKey {
  accessKeyId: string;
  name: string;
  secretAccessKey: string;
  policy: Policy;
  expiresAt: string | null;
  revokedAt: string | null;
}

export interface IssuedKey {
  record: KeyRecord;
  secretAccessKey: string;
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function randomBase32(length: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return Array.from(bytes, (b) => BASE32[b & 31]).join("");
}

function randomSecret(): string {
  // 30 random bytes → 40 characters of URL-safe base64, like an AWS secret's length.
  const bytes = crypto.getRandomValues(new Uint8Array(30));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_");
}

export function keyRegistry(env: Env) {
  return env.KEY_REGISTRY.get(env.KEY_REGISTRY.idFromName("keys"));
}

export class KeyService {
  private readonly env: Env;
  private readonly cache: Map<string, { key: ResolvedKey | null; at: number }>;
  private encryptionKey: Promise<CryptoKey> | undefined;

  constructor(env: Env, cache: Map<string, { key: ResolvedKey | null; at: number }>) {
    this.env = env;
    this.cache = cache;
  }

  private sealingKey(): Promise<CryptoKey> {
    this.encryptionKey ??= importEncryptionKey(this.env.FERRY_KEY_ENCRYPTION_KEY);
    return this.encryptionKey;
  }

  async issue(input: { name: string; policy: Policy; expiresAt: string | null; now: Date }): Promise<IssuedKey> {
    const accessKeyId = `FRY${randomBase32(17)}`;
    const secretAccessKey = randomSecret();
    const record: KeyRecord = {
      accessKeyId,
      name: input.name,
      sealedSecret: await sealSecret(await this.sealingKey(), accessKeyId, secretAccessKey),
      policy: input.policy,
      createdAt: input.now.toISOString(),
      expiresAt: input.expiresAt,
      revokedAt: null,
    };
    await keyRegistry(this.env).put(record);
    return { record, secretAccessKey };
  }

  async list(): Promise<KeyRecord[]> {
    return keyRegistry(this.env).list();
  }

  async revoke(accessKeyId: string, now: Date): Promise<KeyRecord | null> {
    const record = await keyRegistry(this.env).revoke(accessKeyId, now.toISOString());
    this.cache.delete(accessKeyId);
    return record;
  }

  /** The key with its secret, or null when no such key exists (revoked keys are returned). */
  async resolve(accessKeyId: string, now: Date): Promise<ResolvedKey | null> {
    if (!/^[A-Z0-9]{16,128}$/.test(accessKeyId)) return null;
    const cached = this.cache.get(accessKeyId);
    if (cached && now.getTime() - cached.at < LOOKUP_CACHE_MS) return cached.key;
    const record = await keyRegistry(this.env).get(accessKeyId);
    const key = record
      ? {
          accessKeyId: record.accessKeyId,
          name: record.name,
          secretAccessKey: await openSecret(await this.sealingKey(), record.accessKeyId, record.sealedSecret),
          policy: record.policy,
          expiresAt: record.expiresAt,
          revokedAt: record.revokedAt,
        }
      : null;
    this.cache.set(accessKeyId, { key, at: now.getTime() });
    return key;
  }
}
