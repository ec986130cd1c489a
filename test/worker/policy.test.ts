// Key policies at the edge: a grant on `datasets/robots/` covers exactly that prefix
// (never `robotsX`, never the bucket root), each action is separate, and every refused
// write or delete leaves storage as it was.
import { beforeAll, describe, expect, it } from "vitest";
import { edgeFetch, expectOk, expectS3Error, grant, issueKey, listedKeys, objectPath, r2, s3, storedKeys, xmlAll, xmlOne, type IssuedKey } from "./helpers.ts";

let reader: IssuedKey;

beforeAll(async () => {
  reader = await issueKey({ grants: [grant("read,list", "datasets", "robots/")] });
  for (const k of ["robots/ep1.h5", "robots/sub/ep2.h5", "robotsX/a", "robots", "other/b"]) await r2("datasets").put(k, `data of ${k}`);
  await r2("shared").put("robots/ep1.h5", "shared copy");
});

describe("a read,list key for datasets/robots/", () => {
  it("reads and lists inside its prefix", async () => {
    expect(await expectOk(await s3(reader).get("datasets", "robots/ep1.h5"))).toBe("data of robots/ep1.h5");
    expect(await expectOk(await s3(reader).get("datasets", "robots/sub/ep2.h5"))).toBe("data of robots/sub/ep2.h5");
    expect(listedKeys(await expectOk(await s3(reader).list("datasets", { prefix: "robots/" })))).toEqual(["robots/ep1.h5", "robots/sub/ep2.h5"]);
    expect(listedKeys(await expectOk(await s3(reader).list("datasets", { prefix: "robots/sub/" })))).toEqual(["robots/sub/ep2.h5"]);
  });

  it("cannot read a sibling prefix that merely starts with the same letters", async () => {
    await expectS3Error(await s3(reader).get("datasets", "robotsX/a"), 403, "AccessDenied");
    await expectS3Error(await s3(reader).head("datasets", "robotsX/a"), 403, "AccessDenied", "HEAD");
    await expectS3Error(await s3(reader).get("datasets", "robots"), 403, "AccessDenied");
  });

  it("cannot read the same prefix in another bucket, nor outside the prefix", async () => {
    await expectS3Error(await s3(reader).get("shared", "robots/ep1.h5"), 403, "AccessDenied");
    await expectS3Error(await s3(reader).get("datasets", "other/b"), 403, "AccessDenied");
  });

  it("reads the manifest of a dataset it may list, and no other manifest", async () => {
    await r2("datasets").put(".ferry/manifests/robots/manifest.ndjson.gz", "manifest of robots/");
    await r2("datasets").put(".ferry/manifests/manifest.ndjson.gz", "manifest of the whole bucket");
    await r2("datasets").put(".ferry/manifests/other/manifest.ndjson.gz", "manifest of other/");
    expect(await expectOk(await s3(reader).get("datasets", ".ferry/manifests/robots/manifest.ndjson.gz"))).toBe("manifest of robots/");
    await expectS3Error(await s3(reader).get("datasets", ".ferry/manifests/manifest.ndjson.gz"), 403, "AccessDenied");
    await expectS3Error(await s3(reader).get("datasets", ".ferry/manifests/other/manifest.ndjson.gz"), 403, "AccessDenied");
  });

  it("cannot list the bucket root, a prefix without the slash, or a sibling prefix", async () => {
    for (const prefix of ["", "robots", "robotsX/", "rob", "other/"]) {
      await expectS3Error(await s3(reader).list("datasets", prefix ? { prefix } : {}), 403, "AccessDenied");
      await expectS3Error(await s3(reader).request("GET", objectPath("datasets"), { query: prefix ? { prefix } : {} }), 403, "AccessDenied");
    }
  });

  it("cannot write, copy into, start a multipart upload in, or delete its own prefix", async () => {
    await expectS3Error(await s3(reader).put("datasets", "robots/new.h5", "x"), 403, "AccessDenied");
    await expectS3Error(await s3(reader).put("datasets", "robots/ep1.h5", "overwritten"), 403, "AccessDenied");
    const copy = await s3(reader).request("PUT", objectPath("datasets", "robots/copy.h5"), { headers: { "x-amz-copy-source": "datasets/robots/ep1.h5" } });
    await expectS3Error(copy, 403, "AccessDenied");
    await expectS3Error(await s3(reader).request("POST", objectPath("datasets", "robots/mp.h5"), { query: { uploads: "" } }), 403, "AccessDenied");
    await expectS3Error(await s3(reader).delete("datasets", "robots/ep1.h5"), 403, "AccessDenied");
    const batch = await expectOk(
      await s3(reader).request("POST", objectPath("datasets"), { query: { delete: "" }, body: "<Delete><Object><Key>robots/ep1.h5</Key></Object></Delete>" }),
    );
    expect(xmlAll(batch, "Error").map((e) => xmlOne(e, "Code"))).toEqual(["AccessDenied"]);
    expect(await storedKeys("datasets", "robots")).toEqual(["robots", "robots/ep1.h5", "robots/sub/ep2.h5", "robotsX/a"]);
    expect(await (await r2("datasets").get("robots/ep1.h5"))?.text()).toBe("data of robots/ep1.h5");
  });

  it("cannot use a presigned URL to write", async () => {
    const url = await s3(reader).presign("PUT", objectPath("datasets", "robots/by-link.h5"));
    await expectS3Error(await edgeFetch(url, { method: "PUT", body: "x" }), 403, "AccessDenied");
    expect(await r2("datasets").head("robots/by-link.h5")).toBeNull();
  });
});

describe("actions are separate", () => {
  it("a list-only key lists but cannot read", async () => {
    const lister = await issueKey({ grants: [grant("list", "datasets", "robots/")] });
    expect(listedKeys(await expectOk(await s3(lister).list("datasets", { prefix: "robots/" })))).toHaveLength(2);
    await expectS3Error(await s3(lister).get("datasets", "robots/ep1.h5"), 403, "AccessDenied");
  });

  it("a write-only key uploads but cannot read, list or delete what it wrote", async () => {
    const writer = await issueKey({ grants: [grant("write", "shared", "inbox/")] });
    await expectOk(await s3(writer).put("shared", "inbox/drop.bin", "dropped"));
    expect(await (await r2("shared").get("inbox/drop.bin"))?.text()).toBe("dropped");
    await expectS3Error(await s3(writer).get("shared", "inbox/drop.bin"), 403, "AccessDenied");
    await expectS3Error(await s3(writer).list("shared", { prefix: "inbox/" }), 403, "AccessDenied");
    await expectS3Error(await s3(writer).delete("shared", "inbox/drop.bin"), 403, "AccessDenied");
    await expectS3Error(await s3(writer).put("shared", "inboxX/drop.bin", "x"), 403, "AccessDenied");
    expect(await storedKeys("shared", "inbox")).toEqual(["inbox/drop.bin"]);
  });

  it("a delete key deletes inside its prefix only", async () => {
    await r2("shared").put("trash/a", "a");
    await r2("shared").put("trashX/a", "a");
    const deleter = await issueKey({ grants: [grant("delete", "shared", "trash/")] });
    await expectOk(await s3(deleter).delete("shared", "trash/a"), 204);
    await expectS3Error(await s3(deleter).delete("shared", "trashX/a"), 403, "AccessDenied");
    await expectS3Error(await s3(deleter).get("shared", "trashX/a"), 403, "AccessDenied");
    expect(await storedKeys("shared", "trash")).toEqual(["trashX/a"]);
  });

  it("a grant with an empty prefix covers the whole bucket, and only that bucket", async () => {
    const whole = await issueKey({ grants: [grant("read,list", "datasets")] });
    const listed = listedKeys(await expectOk(await s3(whole).list("datasets"))).filter((k) => !k.startsWith(".ferry/"));
    expect(listed).toEqual(["other/b", "robots", "robots/ep1.h5", "robots/sub/ep2.h5", "robotsX/a"]);
    await expectS3Error(await s3(whole).list("shared"), 403, "AccessDenied");
    const buckets = await expectOk(await s3(whole).request("GET", "/"));
    expect(xmlAll(buckets, "Name")).toEqual(["datasets"]);
  });
});
