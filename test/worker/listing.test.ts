// Bucket-level calls and listings: ListBuckets (only granted buckets), HeadBucket,
// GetBucketLocation, CreateBucket, ListObjectsV2 (prefix, delimiter, continuation,
// start-after, max-keys, encoding-type=url) and ListObjects v1 (marker, NextMarker), plus
// the sub-resources Ferry answers NotImplemented to.
import { beforeAll, describe, expect, it } from "vitest";
import { utf8 } from "../../s3/bytes.ts";
import { expectOk, expectS3Error, grant, issueKey, listedKeys, listedPrefixes, objectPath, r2, s3, xmlAll, xmlOne, type IssuedKey } from "./helpers.ts";

const TREE = ["l/a.txt", "l/b/1", "l/b/2", "l/c/1", "l/d.txt", "l/hello world/é.txt", "l/sp ace", "l/x&y<z>'\"", "l/b/deep/3"];
const MANY = Array.from({ length: 1005 }, (_, i) => `many/${String(i).padStart(4, "0")}`);
let key: IssuedKey;

/** S3 order: by UTF-8 bytes. */
function s3Sorted(keys: string[]): string[] {
  const cmp = (a: string, b: string) => {
    const [x, y] = [utf8(a), utf8(b)];
    for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return (x[i] ?? 0) - (y[i] ?? 0);
    return x.length - y.length;
  };
  return [...keys].sort(cmp);
}

beforeAll(async () => {
  key = await issueKey({ grants: [grant("read,list", "datasets", "l/"), grant("list", "datasets", "many/")] });
  await Promise.all(TREE.map((k) => r2("datasets").put(k, k)));
  for (let i = 0; i < MANY.length; i += 100) await Promise.all(MANY.slice(i, i + 100).map((k) => r2("datasets").put(k, "")));
  await r2("shared").put("l/not-visible", "x");
});

async function listXml(query: Record<string, string>, version: 1 | 2 = 2): Promise<string> {
  const response = await s3(key).request("GET", objectPath("datasets"), { query: version === 2 ? { "list-type": "2", ...query } : query });
  return expectOk(response);
}

describe("bucket calls", () => {
  it("ListBuckets shows only the buckets the key has grants on", async () => {
    const body = await expectOk(await s3(key).request("GET", "/"));
    expect(xmlAll(body, "Bucket").map((b) => xmlOne(b, "Name"))).toEqual(["datasets"]);
    expect(xmlOne(xmlOne(body, "Owner") ?? "", "ID")).toBe(key.accessKeyId);
    const both = await issueKey({ grants: [grant("read", "shared", "x/"), grant("list", "datasets", "y/")] });
    const bothBody = await expectOk(await s3(both).request("GET", "/"));
    expect(xmlAll(bothBody, "Bucket").map((b) => xmlOne(b, "Name"))).toEqual(["datasets", "shared"]);
  });

  it("HeadBucket answers 200 for a granted bucket and 403 for another", async () => {
    const response = await s3(key).request("HEAD", objectPath("datasets"));
    expect(response.status).toBe(200);
    expect(response.headers.get("x-amz-bucket-region")).toBe("auto");
    await expectS3Error(await s3(key).request("HEAD", objectPath("shared")), 403, "AccessDenied", "HEAD");
  });

  it("GetBucketLocation answers a LocationConstraint document", async () => {
    const body = await expectOk(await s3(key).request("GET", objectPath("datasets"), { query: { location: "" } }));
    expect(body).toMatch(/<LocationConstraint[^>]*\/?>/);
    await expectS3Error(await s3(key).request("GET", objectPath("shared"), { query: { location: "" } }), 403, "AccessDenied");
  });

  it("CreateBucket on an existing bucket is BucketAlreadyOwnedByYou; a new one is NotImplemented", async () => {
    const error = await expectS3Error(await s3(key).request("PUT", objectPath("datasets")), 409, "BucketAlreadyOwnedByYou");
    expect(error.xml).toContain("<BucketName>datasets</BucketName>");
    await expectS3Error(await s3(key).request("PUT", objectPath("brand-new")), 501, "NotImplemented");
  });

  it("answers a bucket the edge does not have with NoSuchBucket", async () => {
    const all = await issueKey({ grants: [grant("read,list,write,delete", "datasets")] });
    const xml = "<Delete><Object><Key>a</Key></Object></Delete>";
    const error = await expectS3Error(await s3(all).request("POST", objectPath("no-such-bucket"), { query: { delete: "" }, body: xml }), 404, "NoSuchBucket");
    expect(error.xml).toContain("<BucketName>no-such-bucket</BucketName>");
    await expectS3Error(await s3(all).request("GET", objectPath("no-such-bucket"), { query: { "list-type": "2" } }), 404, "NoSuchBucket");
    await expectS3Error(await s3(all).request("GET", objectPath("no-such-bucket", "a")), 404, "NoSuchBucket");
    await expectS3Error(await s3(all).request("HEAD", objectPath("no-such-bucket")), 404, "NoSuchBucket", "HEAD");
  });

  it("answers sub-resources it does not implement with 501 NotImplemented, never a 500", async () => {
    const client = s3(key);
    const calls: Array<[string, string, Record<string, string>]> = [
      ["GET", objectPath("datasets", "l/a.txt"), { acl: "" }],
      ["PUT", objectPath("datasets", "l/a.txt"), { tagging: "" }],
      ["GET", objectPath("datasets"), { acl: "" }],
      ["GET", objectPath("datasets"), { tagging: "" }],
      ["GET", objectPath("datasets"), { policy: "" }],
      ["POST", objectPath("datasets"), {}],
      ["PATCH", objectPath("datasets", "l/a.txt"), {}],
    ];
    for (const [method, path, query] of calls) {
      const error = await expectS3Error(await client.request(method, path, { query }), 501, "NotImplemented");
      expect(error.message, `${method} ${path}`).toBeTruthy();
    }
    expect(await (await r2("datasets").get("l/a.txt"))?.text()).toBe("l/a.txt");
  });
});

describe("ListObjectsV2", () => {
  it("lists a prefix in S3's order", async () => {
    const body = await listXml({ prefix: "l/" });
    expect(listedKeys(body)).toEqual(s3Sorted(TREE));
    expect(xmlOne(body, "KeyCount")).toBe(String(TREE.length));
    expect(xmlOne(body, "IsTruncated")).toBe("false");
    expect(xmlOne(body, "Name")).toBe("datasets");
    const contents = xmlAll(body, "Contents")[0] ?? "";
    expect(xmlOne(contents, "Size")).toBe(String("l/a.txt".length));
    expect(xmlOne(contents, "ETag")).toMatch(/^"[0-9a-f]{32}"$/);
  });

  it("groups by delimiter into CommonPrefixes", async () => {
    const body = await listXml({ prefix: "l/", delimiter: "/" });
    expect(listedKeys(body)).toEqual(s3Sorted(TREE.filter((k) => !k.slice(2).includes("/"))));
    expect(listedPrefixes(body)).toEqual(["l/b/", "l/c/", "l/hello world/"]);
    expect(xmlOne(body, "KeyCount")).toBe(String(listedKeys(body).length + 3));
    const nested = await listXml({ prefix: "l/b/", delimiter: "/" });
    expect(listedKeys(nested)).toEqual(["l/b/1", "l/b/2"]);
    expect(listedPrefixes(nested)).toEqual(["l/b/deep/"]);
  });

  it("pages with continuation tokens until every key is seen once", async () => {
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const body = await listXml({ prefix: "l/", "max-keys": "2", ...(token ? { "continuation-token": token } : {}) });
      const keys = listedKeys(body);
      expect(keys.length).toBeLessThanOrEqual(2);
      seen.push(...keys);
      token = xmlOne(body, "NextContinuationToken");
      expect(xmlOne(body, "IsTruncated")).toBe(token ? "true" : "false");
      pages++;
    } while (token && pages < 20);
    expect(seen).toEqual(s3Sorted(TREE));
    expect(pages).toBe(Math.ceil(TREE.length / 2));
  });

  it("pages a delimited listing without losing or repeating entries", async () => {
    const seen: string[] = [];
    let token: string | undefined;
    for (let pages = 0; pages < 20; pages++) {
      const body = await listXml({ prefix: "l/", delimiter: "/", "max-keys": "2", ...(token ? { "continuation-token": token } : {}) });
      seen.push(...listedKeys(body), ...listedPrefixes(body));
      token = xmlOne(body, "NextContinuationToken");
      if (!token) break;
    }
    const expected = [...TREE.filter((k) => !k.slice(2).includes("/")), "l/b/", "l/c/", "l/hello world/"];
    expect(s3Sorted(seen)).toEqual(s3Sorted(expected));
  });

  it("starts after start-after, and skips a whole common prefix named by it", async () => {
    expect(listedKeys(await listXml({ prefix: "l/", "start-after": "l/b/1" }))).toEqual(s3Sorted(TREE).filter((k) => k > "l/b/1"));
    const delimited = await listXml({ prefix: "l/", delimiter: "/", "start-after": "l/b/" });
    expect(listedPrefixes(delimited)).toEqual(["l/c/", "l/hello world/"]);
    expect(xmlOne(delimited, "StartAfter")).toBe("l/b/");
  });

  it("caps max-keys at 1000, and answers max-keys=0 with an empty page", async () => {
    const capped = await listXml({ prefix: "many/", "max-keys": "5000" });
    expect(xmlOne(capped, "MaxKeys")).toBe("1000");
    expect(listedKeys(capped)).toEqual(MANY.slice(0, 1000));
    expect(xmlOne(capped, "IsTruncated")).toBe("true");
    const token = xmlOne(capped, "NextContinuationToken") ?? "";
    expect(listedKeys(await listXml({ prefix: "many/", "continuation-token": token }))).toEqual(MANY.slice(1000));
    const defaulted = await listXml({ prefix: "many/" });
    expect(listedKeys(defaulted).length).toBe(1000);
    const zero = await listXml({ prefix: "many/", "max-keys": "0" });
    expect(listedKeys(zero)).toEqual([]);
    expect(xmlOne(zero, "KeyCount")).toBe("0");
    expect(xmlOne(zero, "MaxKeys")).toBe("0");
    await expectS3Error(await s3(key).list("datasets", { prefix: "many/", "max-keys": "ten" }), 400, "InvalidArgument");
  });

  it("URL-encodes keys, prefixes and delimiters with encoding-type=url, and XML-escapes them otherwise", async () => {
    const body = await listXml({ prefix: "l/hello world/", "encoding-type": "url" });
    expect(xmlOne(body, "EncodingType")).toBe("url");
    expect(listedKeys(body)).toEqual(["l/hello%20world/%C3%A9.txt"]);
    expect(xmlOne(body, "Prefix")).toBe("l/hello%20world/");
    const delimited = await listXml({ prefix: "l/", delimiter: "/", "encoding-type": "url" });
    expect(listedPrefixes(delimited)).toContain("l/hello%20world/");
    expect(listedKeys(delimited)).toContain("l/sp%20ace");
    const plain = await listXml({ prefix: "l/x" });
    expect(listedKeys(plain)).toEqual(["l/x&y<z>'\""]);
    expect(plain).toContain("<Key>l/x&amp;y&lt;z&gt;");
    await expectS3Error(await s3(key).list("datasets", { prefix: "l/", "encoding-type": "base64" }), 400, "InvalidArgument");
  });
});

describe("ListObjects (v1)", () => {
  it("lists after a marker", async () => {
    const body = await listXml({ prefix: "l/", marker: "l/b/2" }, 1);
    expect(listedKeys(body)).toEqual(s3Sorted(TREE).filter((k) => k > "l/b/2"));
    expect(xmlOne(body, "Marker")).toBe("l/b/2");
    expect(xmlOne(body, "NextMarker")).toBeUndefined();
  });

  it("gives NextMarker with a delimiter and pages through keys and prefixes with it", async () => {
    const seen: string[] = [];
    let marker = "";
    for (let pages = 0; pages < 20; pages++) {
      const body = await listXml({ prefix: "l/", delimiter: "/", "max-keys": "2", ...(marker ? { marker } : {}) }, 1);
      // One page holds keys and prefixes in two lists; together they are one run of S3's order.
      const entries = s3Sorted([...listedKeys(body), ...listedPrefixes(body)]);
      seen.push(...entries);
      if (xmlOne(body, "IsTruncated") !== "true") break;
      const next = xmlOne(body, "NextMarker");
      expect(next).toBe(entries.at(-1));
      marker = next ?? "";
    }
    const expected = [...TREE.filter((k) => !k.slice(2).includes("/")), "l/b/", "l/c/", "l/hello world/"];
    expect(seen).toEqual(s3Sorted(expected));
  });

  it("pages without a delimiter by the last key (no NextMarker), as clients do", async () => {
    const first = await listXml({ prefix: "l/", "max-keys": "4" }, 1);
    expect(xmlOne(first, "IsTruncated")).toBe("true");
    expect(xmlOne(first, "NextMarker")).toBeUndefined();
    const keys = listedKeys(first);
    const second = await listXml({ prefix: "l/", marker: keys.at(-1) ?? "" }, 1);
    expect([...keys, ...listedKeys(second)]).toEqual(s3Sorted(TREE));
  });
});
