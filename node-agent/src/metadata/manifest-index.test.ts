// The manifest index answers LIST exactly as S3 would over the same keys (prefix,
// delimiter, start-after, paging) and HEAD with the recorded checksums, for a dataset of
// 100,000 objects.
import { describe, expect, it } from "vitest";
import type { ListResult } from "../../../s3/listing-xml.ts";
import type { ManifestEntry } from "../../../s3/manifest.ts";
import { ManifestIndex } from "./manifest-index.ts";

const keys: string[] = [];
for (let run = 0; run < 10; run++) {
  for (let ep = 0; ep < 10_000; ep++) keys.push(`robots/run-${run}/ep_${String(ep).padStart(5, "0")}.hdf5`);
}
keys.push("robots/README", "robots/run-1", "other/x", "robots/ü/é.h5");
keys.sort();
const entries: ManifestEntry[] = keys.map((key, i) => ({ key, size: i, etag: `"${i.toString(16)}"`, lastModified: "2026-11-01T00:00:00.000Z", crc32c: "AAAAAA==" }));
const index = new ManifestIndex("datasets", { header: { format: "ferry-manifest", version: 1, bucket: "datasets", prefix: "", generatedAt: "", objects: entries.length }, entries });

/** What S3 lists for these keys, computed the plain way. */
function naive(prefix: string, delimiter: string): { objects: string[]; prefixes: string[] } {
  const objects: string[] = [];
  const prefixes = new Set<string>();
  for (const key of keys) {
    if (!key.startsWith(prefix)) continue;
    const cut = delimiter ? key.indexOf(delimiter, prefix.length) : -1;
    if (cut >= 0) prefixes.add(key.slice(0, cut + delimiter.length));
    else objects.push(key);
  }
  return { objects, prefixes: [...prefixes] };
}

function listAll(prefix: string, delimiter: string, maxKeys: number): { objects: string[]; prefixes: string[]; pages: number } {
  const objects: string[] = [];
  const prefixes: string[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const page: ListResult = index.list({ prefix, delimiter, maxKeys, ...(token ? { continuationToken: token } : {}) });
    pages++;
    expect(page.objects.length + page.commonPrefixes.length).toBeLessThanOrEqual(maxKeys);
    objects.push(...page.objects.map((o) => o.key));
    prefixes.push(...page.commonPrefixes);
    token = page.isTruncated ? page.nextContinuationToken : undefined;
  } while (token);
  return { objects, prefixes, pages };
}

describe("ManifestIndex", () => {
  it("pages through 100,000 objects exactly as S3 would list them", () => {
    const started = performance.now();
    const all = listAll("robots/", "", 1000);
    const ms = performance.now() - started;
    expect(all.objects).toEqual(naive("robots/", "").objects);
    expect(all.pages).toBe(Math.ceil(all.objects.length / 1000));
    console.log(`listed ${all.objects.length} keys in ${all.pages} pages in ${ms.toFixed(0)} ms`);
  });

  it("groups by delimiter, including prefixes that span pages and unicode keys", () => {
    for (const [prefix, delimiter, maxKeys] of [["", "/", 1], ["robots/", "/", 3], ["robots/run-3/", "/", 700], ["robots/ü/", "/", 10], ["robots/run-1", "/", 2]] as const) {
      const got = listAll(prefix, delimiter, maxKeys);
      const want = naive(prefix, delimiter);
      expect(got.objects).toEqual(want.objects);
      expect(got.prefixes).toEqual(want.prefixes);
    }
  });

  it("starts after a key and answers HEAD with the recorded checksum", () => {
    const page = index.list({ prefix: "robots/run-9/", delimiter: "", maxKeys: 2, startAfter: "robots/run-9/ep_09997.hdf5" });
    expect(page.objects.map((o) => o.key)).toEqual(["robots/run-9/ep_09998.hdf5", "robots/run-9/ep_09999.hdf5"]);
    expect(page.isTruncated).toBe(false);
    expect(index.head("robots/run-0/ep_00000.hdf5")).toMatchObject({ bucket: "datasets", etag: expect.stringMatching(/^[0-9a-f]+$/), metadata: { "ferry-crc32c": "AAAAAA==" } });
    expect(index.head("robots/missing")).toBeUndefined();
  });
});
