// OpenFiles on a real temp dir: reads whole files, reports absent ones, never serves a
// replaced file's old inode once dropped, and keeps at most maxOpen descriptors.
import { rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, expect, test } from "vitest";
import { tempDirs } from "./cache-test-support.ts";
import { OpenFiles } from "./open-files.ts";

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

async function readAll(files: OpenFiles, path: string, max = 64): Promise<string | undefined> {
  const buf = Buffer.alloc(max);
  const n = await files.read(path, buf);
  return n === undefined ? undefined : buf.toString("utf8", 0, n);
}

test("reads whole files; an absent file is undefined and not cached", async () => {
  const dir = await dirs.make();
  const files = new OpenFiles({ maxOpen: 4 });
  await writeFile(join(dir, "a"), "alpha");
  expect(await readAll(files, join(dir, "a"))).toBe("alpha");
  expect(await readAll(files, join(dir, "a"), 3)).toBe("alp");
  expect(await readAll(files, join(dir, "missing"))).toBeUndefined();
  expect(files.openCount).toBe(1);
  files.dropAll();
});

test("a dropped path is reopened: a file renamed over it is read, not the old inode", async () => {
  const dir = await dirs.make();
  const files = new OpenFiles({ maxOpen: 4 });
  const path = join(dir, "block");
  await writeFile(path, "old");
  expect(await readAll(files, path)).toBe("old");
  await writeFile(join(dir, "tmp"), "new!");
  files.drop(path);
  await rename(join(dir, "tmp"), path);
  expect(await readAll(files, path)).toBe("new!");
  files.drop(path);
  await rm(path);
  expect(await readAll(files, path)).toBeUndefined();
});

test("concurrent reads share one descriptor; the LRU keeps at most maxOpen", async () => {
  const dir = await dirs.make();
  const files = new OpenFiles({ maxOpen: 2 });
  for (const n of ["a", "b", "c"]) await writeFile(join(dir, n), n.repeat(10));
  const got = await Promise.all(["a", "a", "b", "c", "a", "c"].map((n) => readAll(files, join(dir, n))));
  expect(got).toEqual(["aaaaaaaaaa", "aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc", "aaaaaaaaaa", "cccccccccc"]);
  expect(files.openCount).toBeLessThanOrEqual(2);
  files.dropAll();
  expect(files.openCount).toBe(0);
});
