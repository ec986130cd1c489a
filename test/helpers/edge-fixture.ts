// What a test file of real clients against one edge sets up: a local edge, a key with the
// file's grants, an SDK client signed with it and a scratch directory, all gone afterwards.
import type { S3Client } from "@aws-sdk/client-s3";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalEdge, type LocalEdge, type TestKey } from "./local-edge.ts";
import { s3Client } from "./real-clients.ts";

export interface EdgeFixture {
  edge: LocalEdge;
  key: TestKey;
  sdk: S3Client;
  /** The scratch directory (removed by closeEdgeFixture). */
  work: string;
}

/** Starts the edge and issues the key (`grants` as createKey takes them); call from beforeAll. */
export async function openEdgeFixture(options: { scratchPrefix: string; grants: string[]; keyName: string }): Promise<EdgeFixture> {
  const work = mkdtempSync(join(tmpdir(), options.scratchPrefix));
  let edge: LocalEdge | undefined;
  try {
    edge = await startLocalEdge();
    const key = await edge.createKey(options.grants, { name: options.keyName });
    return { edge, key, sdk: s3Client(edge.url, key), work };
  } catch (error) {
    await closeEdgeFixture({ edge, work });
    throw error;
  }
}

/** Stops what openEdgeFixture started; safe on a fixture beforeAll never finished. */
export async function closeEdgeFixture(fixture: Partial<EdgeFixture> | undefined): Promise<void> {
  fixture?.sdk?.destroy();
  await fixture?.edge?.stop();
  if (fixture?.work) rmSync(fixture.work, { recursive: true, force: true });
}

/** `name` under the scratch directory, created. */
export function scratchDir(fixture: EdgeFixture, name: string): string {
  const path = join(fixture.work, name);
  mkdirSync(path, { recursive: true });
  return path;
}
