// Key secrets at rest: AES-256-GCM under FERRY_KEY_ENCRYPTION_KEY (a Worker secret), with
// the access key id as associated data so a ciphertext cannot be moved to another key.
// SigV4 verification needs the plaintext secret, so a hash-only store is not an option.
import { fromBase64, toBase64, utf8 } from "../../../s3/bytes.ts";

export class SecretBoxError extends Error {
  override readonly name = "SecretBoxError";
}

export interface SealedSecret {
  /** base64 of the 12-byte IV followed by the ciphertext and tag */
  sealed: string;
}

export async function importEncryptionKey(base64Key: string | undefined): Promise<CryptoKey> {
  if (!base64Key) throw new SecretBoxError("FERRY_KEY_ENCRYPTION_KEY is not set: set it with `wrangler secret put FERRY_KEY_ENCRYPTION_KEY`");
  let raw: Uint8Array<ArrayBuffer>;
  try {
    raw = fromBase64(base64Key.trim());
  } catch (error) {
    throw new SecretBoxError("FERRY_KEY_ENCRYPTION_KEY is not base64", { cause: error });
  }
  if (raw.length !== 32) throw new SecretBoxError(`FERRY_KEY_ENCRYPTION_KEY must be 32 bytes of base64, got ${raw.length} bytes`);
  return crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
}

export async function sealSecret(key: CryptoKey, accessKeyId: string, secret: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ciphertext = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: utf8(accessKeyId) }, key, utf8(secret)));
  const out = new Uint8Array(iv.length + ciphertext.length);
  out.set(iv);
  out.set(ciphertext, iv.length);
  return toBase64(out);
}

export async function openSecret(key: CryptoKey, accessKeyId: string, sealed: string): Promise<string> {
  const bytes = fromBase64(sealed);
  try {
    const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: bytes.subarray(0, 12), additionalData: utf8(accessKeyId) }, key, bytes.subarray(12));
    return new TextDecoder().decode(plain);
  } catch (error) {
    throw new SecretBoxError(`cannot decrypt the secret of key ${accessKeyId}: was FERRY_KEY_ENCRYPTION_KEY changed?`, { cause: error });
  }
}
