// Streaming checksums match the published check values, and comparison never passes on size.
import { describe, expect, it } from "vitest";
import { compareChecksums, createHashes } from "./hashing.ts";

describe("hashing", () => {
  it("computes CRC32C and MD5 in any split", () => {
    const whole = createHashes();
    whole.update(new TextEncoder().encode("123456789"));
    const split = createHashes();
    for (const part of ["1", "2345", "6789"]) split.update(new TextEncoder().encode(part));
    const expected = { crc32c: Buffer.from("e3069283", "hex").toString("base64"), md5: "JfnnlDI7RTiF9RgfG2JNCw==" };
    expect(whole.digest()).toEqual(expected);
    expect(split.digest()).toEqual(expected);
  });

  it("reports mismatches, and objects with no source checksum as such", () => {
    const computed = { crc32c: "4waSgw==", md5: "JfnnlDI7RTiF9RgfG2JNCw==" };
    expect(compareChecksums({ crc32c: "4waSgw==" }, computed)).toEqual({ ok: true, verification: "source-checksum" });
    expect(compareChecksums({ md5: "JfnnlDI7RTiF9RgfG2JNCw==" }, computed)).toEqual({ ok: true, verification: "source-checksum" });
    expect(compareChecksums({}, computed)).toEqual({ ok: true, verification: "no-source-checksum" });
    expect(compareChecksums({ crc32c: "AAAAAA==" }, computed)).toMatchObject({ ok: false, algorithm: "CRC32C" });
    expect(compareChecksums({ crc32c: "4waSgw==", md5: "x" }, computed)).toMatchObject({ ok: false, algorithm: "MD5" });
  });
});
