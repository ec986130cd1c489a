// Checksums against published check values, a bitwise reference implementation, and
// themselves (incremental == one-shot at odd split points and odd buffer alignments).
import { describe, expect, it } from "vitest";
import { toHex, utf8 } from "./bytes.ts";
import {
  checksum,
  checksumAlgorithmFromHeader,
  checksumAlgorithms,
  checksumBase64,
  checksumHeaderName,
  checksumLengthBytes,
  crc32,
  crc32c,
  createHasher,
  parseChecksumAlgorithm,
} from "./checksums.ts";

/** Bit-at-a-time reflected CRC, the textbook definition, to check the tables against. */
function referenceCrc(bytes: Uint8Array, widthBits: 32 | 64, reflectedPoly: bigint): bigint {
  const mask = (1n << BigInt(widthBits)) - 1n;
  let crc = mask;
  for (const byte of bytes) {
    crc ^= BigInt(byte);
    for (let bit = 0; bit < 8; bit++) crc = crc & 1n ? (crc >> 1n) ^ reflectedPoly : crc >> 1n;
  }
  return crc ^ mask;
}

function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const hexOf = (value: bigint, widthBits: number): string => value.toString(16).padStart(widthBits / 4, "0");
const check = utf8("123456789");

describe("check values", () => {
  it('matches the catalogued "123456789" check values', () => {
    expect(crc32(check)).toBe(0xcbf43926);
    expect(crc32c(check)).toBe(0xe3069283);
    expect(toHex(checksum("CRC32", check))).toBe("cbf43926");
    expect(toHex(checksum("CRC32C", check))).toBe("e3069283");
    expect(toHex(checksum("CRC64NVME", check))).toBe("ae8b14860a799888");
    expect(toHex(checksum("SHA1", check))).toBe("f7c3bc1d808e04732adf679965ccc34ca7ae3441");
    expect(toHex(checksum("MD5", check))).toBe("25f9e794323b453885f5181f1b624d0b");
    expect(toHex(checksum("SHA256", check))).toBe("15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225");
  });

  it("matches the iSCSI (RFC 3720) CRC32C vectors", () => {
    const ramp = Uint8Array.from({ length: 32 }, (_, i) => i);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(ramp)).toBe(0x46dd794e);
    expect(crc32c(ramp.slice().reverse())).toBe(0x113fdb5c);
  });

  it("matches the NVMe command set CRC64 vectors (4 KiB buffers)", () => {
    const ramp = Uint8Array.from({ length: 4096 }, (_, i) => i & 0xff);
    const down = Uint8Array.from({ length: 4096 }, (_, i) => 0xff - (i & 0xff));
    expect(toHex(checksum("CRC64NVME", new Uint8Array(4096)))).toBe("6482d367eb22b64e");
    expect(toHex(checksum("CRC64NVME", new Uint8Array(4096).fill(0xff)))).toBe("c0ddba7302eca3ac");
    expect(toHex(checksum("CRC64NVME", ramp))).toBe("3e729f5f6750449c");
    expect(toHex(checksum("CRC64NVME", down))).toBe("9a2df64b8e9e517e");
  });

  it("gives the base64 values S3 and the SDKs send for an empty body and a text", () => {
    const empty = new Uint8Array(0);
    expect(checksumBase64("CRC32", empty)).toBe("AAAAAA==");
    expect(checksumBase64("CRC32C", empty)).toBe("AAAAAA==");
    expect(checksumBase64("CRC64NVME", empty)).toBe("AAAAAAAAAAA=");
    expect(checksumBase64("SHA1", empty)).toBe("2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
    expect(checksumBase64("SHA256", empty)).toBe("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    expect(checksumBase64("MD5", empty)).toBe("1B2M2Y8AsgTpgAmY7PhCfg==");
    const fox = utf8("The quick brown fox jumps over the lazy dog");
    expect(crc32(fox)).toBe(0x414fa339);
    expect(crc32c(fox)).toBe(0x22620404);
    expect(checksumBase64("CRC32", fox)).toBe("QU+jOQ==");
  });
});

describe("against the bitwise reference", () => {
  const data = pseudoRandomBytes(1031, 7);
  const backing = new Uint8Array(data.length + 8);

  it("agrees at every buffer alignment and many lengths", () => {
    for (let offset = 0; offset < 8; offset++) {
      backing.set(data, offset);
      for (const length of [0, 1, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 1031]) {
        const view = backing.subarray(offset, offset + length);
        const expected = data.subarray(0, length);
        expect(crc32(view)).toBe(Number(referenceCrc(expected, 32, 0xedb88320n)));
        expect(crc32c(view)).toBe(Number(referenceCrc(expected, 32, 0x82f63b78n)));
        expect(toHex(checksum("CRC64NVME", view))).toBe(hexOf(referenceCrc(expected, 64, 0x9a6c9329ac4bc9b5n), 64));
      }
    }
  });
});

describe("incremental", () => {
  const data = pseudoRandomBytes(70_001, 42);

  it.each(checksumAlgorithms)("%s: any split gives the one-shot digest", (algorithm) => {
    const expected = toHex(checksum(algorithm, data));
    expect(checksum(algorithm, data)).toHaveLength(checksumLengthBytes(algorithm));
    for (const step of [1, 3, 7, 13, 4096, 65_537]) {
      const hasher = createHasher(algorithm);
      // Tiny steps over the whole input would be slow for nothing; cover the start finely.
      const fineEnd = step < 100 ? 5_000 : 0;
      for (let i = 0; i < fineEnd; i += step) hasher.update(data.subarray(i, Math.min(i + step, fineEnd)));
      for (let i = fineEnd; i < data.length; i += step) hasher.update(data.subarray(i, i + step));
      hasher.update(new Uint8Array(0));
      expect(toHex(hasher.digest())).toBe(expected);
    }
  });

  it("continues crc32 and crc32c from a previous value", () => {
    const cut = 12_345;
    expect(crc32(data.subarray(cut), crc32(data.subarray(0, cut)))).toBe(crc32(data));
    expect(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut)))).toBe(crc32c(data));
  });
});

describe("names", () => {
  it("maps algorithms to header names and back", () => {
    for (const algorithm of checksumAlgorithms) {
      const header = checksumHeaderName(algorithm);
      expect(header).toBe(header.toLowerCase());
      expect(checksumAlgorithmFromHeader(header)).toBe(algorithm);
      expect(checksumAlgorithmFromHeader(header.toUpperCase())).toBe(algorithm);
    }
    expect(checksumHeaderName("CRC64NVME")).toBe("x-amz-checksum-crc64nvme");
    expect(checksumAlgorithmFromHeader("x-amz-checksum-algorithm")).toBeUndefined();
    expect(checksumAlgorithmFromHeader("x-amz-checksum-type")).toBeUndefined();
    expect(checksumAlgorithmFromHeader("content-md5")).toBeUndefined();
  });

  it("parses algorithm names case-insensitively", () => {
    expect(parseChecksumAlgorithm("crc32c")).toBe("CRC32C");
    expect(parseChecksumAlgorithm("Crc64Nvme")).toBe("CRC64NVME");
    expect(parseChecksumAlgorithm("SHA256")).toBe("SHA256");
    expect(parseChecksumAlgorithm("sha512")).toBeUndefined();
    expect(parseChecksumAlgorithm("")).toBeUndefined();
    expect(parseChecksumAlgorithm("toString")).toBeUndefined();
  });
});
