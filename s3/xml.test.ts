// The two request documents S3 takes, as real clients write them (Go clients escape
// quotes as &#34;), and the escaping of what the edge writes back.
import { describe, expect, it } from "vitest";
import { S3Error } from "./errors.ts";
import { escapeXml, parseCompleteMultipartUpload, parseDeleteObjects } from "./xml.ts";

describe("request documents", () => {
  it("reads Complete with ETags quoted as &#34; (rclone, Go SDKs), &quot; or raw quotes", () => {
    const xml = `<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
      <Part><ETag>&#34;abc&#34;</ETag><PartNumber>1</PartNumber></Part>
      <Part><ETag>&quot;def&quot;</ETag><PartNumber>2</PartNumber><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>
      <Part><ETag>"ghi"</ETag><PartNumber>3</PartNumber></Part>
    </CompleteMultipartUpload>`;
    expect(parseCompleteMultipartUpload(xml)).toEqual([
      { partNumber: 1, etag: '"abc"', checksums: {} },
      { partNumber: 2, etag: '"def"', checksums: { CRC32: "AAAAAA==" } },
      { partNumber: 3, etag: '"ghi"', checksums: {} },
    ]);
  });

  it("keeps keys in Delete exactly, spaces and escapes included", () => {
    const xml = `<Delete><Quiet>true</Quiet><Object><Key> a b &amp; c.h5 </Key></Object><Object><Key>x&lt;y</Key></Object></Delete>`;
    expect(parseDeleteObjects(xml)).toEqual({ quiet: true, keys: [" a b & c.h5 ", "x<y"] });
  });

  it("refuses documents that are not well-formed or have no parts", () => {
    for (const xml of ["", "<CompleteMultipartUpload>", "<CompleteMultipartUpload></CompleteMultipartUpload>", "<Other/>", "<CompleteMultipartUpload><Part><PartNumber>0</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>"]) {
      expect(() => parseCompleteMultipartUpload(xml)).toThrow(S3Error);
    }
  });

  it("escapes what XML cannot carry", () => {
    expect(escapeXml(`a<b>&"'\u0001`)).toBe("a&lt;b&gt;&amp;&quot;&apos;&#x1;");
  });
});
