// Streaming digests for request bodies inside workerd. SHA-*/MD5 go through the runtime's
// native crypto.DigestStream (pure-JS SHA-256 runs at ~8 MiB/s in workerd, native at
// hundreds); CRCs use the shared table-driven code, which is fast everywhere.
import { createHasher, type ChecksumAlgorithm } from "../../../s3/checksums.ts";

export interface BodyDigest {
  update(data: Uint8Array): Promise<void>;
  digest(): Promise<Uint8Array>;
}

const NATIVE: Partial<Record<ChecksumAlgorithm, string>> = { MD5: "MD5", SHA1: "SHA-1", SHA256: "SHA-256" };

export function createBodyDigest(algorithm: ChecksumAlgorithm): BodyDigest {
  const native = NATIVE[algorithm];
  if (native) {
    const stream = new crypto.DigestStream(native);
    const writer = stream.getWriter();
    return {
      update: (data) => writer.write(data),
      async digest() {
        await writer.close();
        return new Uint8Array(await stream.digest);
      },
    };
  }
  const hasher = createHasher(algorithm);
  return {
    update: async (data) => hasher.update(data),
    digest: async () => hasher.digest(),
  };
}
