// One replication run: check both ends (before anything is written), list both, decide,
// sweep stale multipart uploads, copy with bounded concurrency and retries, delete extras
// (--delete), then record the shard's index and publish the dataset manifest.
// Crash safety: every copy is atomic (PUT, or a multipart upload completed only after
// verification), so a rerun finds each object either whole, with lineage, or absent.
import { unquoteEtag } from "../../../s3/conditionals.ts";
import type { ReplicateConfig } from "../config.ts";
import { manifestKey } from "../../../s3/manifest.ts";
import { indexFolder, indexKey, readIndexes, writeIndex, type IndexEntry } from "../dest/dest-index.ts";
import type { S3Destination } from "../dest/s3-destination.ts";
import { listDestination, rangeBounds } from "../dest/ranged-list.ts";
import { InputError, InterruptedError, SourceChangedError } from "../errors.ts";
import { publishManifest, type PublishResult } from "../manifest/publish.ts";
import type { Reporter } from "../report/reporter.ts";
import { egressUsd, type RunSummary } from "../report/summary.ts";
import type { Source, SourceObject } from "../sources/source.ts";
import { copyObject, type CopyContext } from "./copy-object.ts";
import { Budget, RateLimit, forEachLimit } from "./limits.ts";
import { keysNeedingLineage, plan } from "./plan.ts";
import { withRetries } from "./retry.ts";
import { inShard } from "./shard.ts";

export interface RunDeps {
  config: ReplicateConfig;
  source: Source;
  dest: S3Destination;
  reporter: Reporter;
  signal: AbortSignal;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function collectSource(source: Source, signal: AbortSignal): Promise<SourceObject[]> {
  const objects: SourceObject[] = [];
  for await (const o of source.list(signal)) objects.push(o);
  return objects;
}

export async function replicateOnce(deps: RunDeps): Promise<RunSummary> {
  const { config, source, dest, reporter, signal } = deps;
  const started = performance.now();
  const startedAt = new Date();
  const destPrefix = config.dest.prefix;
  const shardText = `${config.shard.index}/${config.shard.count}`;
  const requestsBefore = new Map(dest.requests);
  reporter.log("info", "run started", { source: source.url, dest: config.dest.url, shard: shardText, dryRun: config.dryRun });

  // Everything up to the first write only reads: bad input fails here with nothing written.
  await source.check();
  // The keys this prefix's index already names split a large destination listing into
  // ranges listed at once (ranged-list.ts); with no index it is one plain listing. The
  // listing starts before the index has arrived, and the current manifest is fetched
  // meanwhile too (publishing compares with it at the end).
  const indexesRead = readIndexes(dest, destPrefix);
  const manifestRead = config.dryRun ? undefined : dest.getBytes(manifestKey(destPrefix));
  manifestRead?.catch(() => undefined); // awaited (and its error reported) when publishing
  const [all, listed, indexes, uploads] = await Promise.all([
    collectSource(source, signal),
    listDestination(dest, destPrefix, indexesRead.then((read) => rangeBounds([...read.entries.keys()])), signal),
    indexesRead,
    dest.listUploads(destPrefix),
    dest.probeWrite(manifestKey(destPrefix).replace(/[^/]*$/, "")),
    dest.probeWrite(indexFolder(destPrefix)),
  ]);
  if (all.length === 0) throw new InputError(`source is empty or does not exist: ${source.url} (nothing copied; check the prefix)`);
  const sources = all.filter((o) => inShard(o.key, config.shard));
  const known = indexes.entries;

  const lookup = async (keys: string[]) => {
    await forEachLimit(keys, config.concurrency, async (key) => {
      const head = await dest.head(key, signal);
      if (head) known.set(key, { key, etag: head.object.etag, size: head.object.size, ...head.lineage });
    }, signal);
  };
  await lookup(keysNeedingLineage(sources, destPrefix, listed, known));
  const decided = plan({ sources, destPrefix, shard: config.shard, listed, known });
  const datasetBytes = sources.reduce((sum, o) => sum + o.size, 0);
  const toCopyBytes = decided.copies.reduce((sum, c) => sum + c.object.size, 0);
  reporter.log("info", "plan", { listed: sources.length, copy: decided.copies.length, copyBytes: toCopyBytes, unchanged: decided.unchanged, sameContent: decided.sameContent, extra: decided.extra.length, delete: config.delete });

  const errors: Array<{ key: string; error: string }> = decided.rejected.map((r) => ({ key: r.object.key, error: r.reason }));
  let copied = 0;
  let copiedBytes = 0;
  let sourceBytesRead = 0;
  let unverified = 0;
  let deleted = 0;
  let staleUploadsAborted = 0;
  let manifest: PublishResult | undefined;

  if (config.dryRun) {
    for (const c of decided.copies) reporter.objectDone({ type: "would-copy", key: c.destKey, source: c.object.url, bytes: c.object.size, reason: c.reason });
    if (config.delete) for (const key of decided.extra) reporter.objectDone({ type: "would-delete", key });
    copied = decided.copies.length;
    copiedBytes = toCopyBytes;
    deleted = config.delete ? decided.extra.length : 0;
  } else {
    // Uploads this shard left behind (a killed run) hold parts nobody will complete.
    for (const upload of uploads) {
      const relative = upload.key.slice(destPrefix.length);
      if (!upload.key.startsWith(destPrefix) || !inShard(relative, config.shard)) continue;
      if (upload.initiated && upload.initiated.getTime() >= startedAt.getTime()) continue;
      await dest.abortMultipart(upload.key, upload.uploadId);
      staleUploadsAborted++;
      reporter.log("info", "stale multipart upload aborted", { key: upload.key, uploadId: upload.uploadId, initiated: upload.initiated?.toISOString() });
    }

    reporter.planned({ objects: decided.copies.length, bytes: toCopyBytes });
    const context: CopyContext = {
      source,
      dest,
      settings: { partSizeBytes: config.partSizeBytes, multipartThresholdBytes: config.multipartThresholdBytes, partsInFlight: config.partsInFlight },
      memory: new Budget(config.memoryBudgetBytes),
      rate: config.bandwidthBytesPerSecond ? new RateLimit(config.bandwidthBytesPerSecond) : undefined,
      signal,
      onBytes: (n) => {
        sourceBytesRead += n;
        reporter.bytes(n);
      },
      openUploads: new Map(),
    };
    const written = new Map<string, IndexEntry>();
    try {
      await forEachLimit(decided.copies, config.concurrency, async ({ object: listedObject, destKey, reason }) => {
        let object: SourceObject | undefined = listedObject;
        const objectStarted = performance.now();
        let attempts = 0;
        try {
          let lastError: unknown;
          const result = await withRetries(
            async (attempt) => {
              attempts = attempt;
              // A changed source is re-read at its current version (or found gone).
              if (attempt > 1 && lastError instanceof SourceChangedError) object = await source.stat(listedObject.key, signal);
              if (!object) return undefined;
              try {
                return await copyObject(object, destKey, context);
              } catch (error) {
                lastError = error;
                throw error;
              }
            },
            {
              attempts: config.attempts,
              signal,
              onRetry: (error, attempt, delayMs) => reporter.log("warn", "copy attempt failed, retrying", { key: destKey, attempt, delayMs, error: message(error) }),
            },
          );
          if (!result) {
            reporter.log("warn", "source object vanished during the run, not copied", { key: destKey, source: listedObject.url });
            return;
          }
          copied++;
          copiedBytes += result.bytes;
          if (result.verification === "no-source-checksum") unverified++;
          written.set(destKey, { key: destKey, etag: result.etag, size: result.bytes, ...result.lineage });
          reporter.objectDone({
            type: "copied",
            key: destKey,
            source: object?.url ?? listedObject.url,
            bytes: result.bytes,
            parts: result.parts,
            attempts,
            reason,
            verification: result.verification,
            seconds: Math.round(performance.now() - objectStarted) / 1000,
          });
        } catch (error) {
          if (signal.aborted) throw error;
          errors.push({ key: destKey, error: message(error) });
          reporter.objectDone({ type: "failed", key: destKey, source: listedObject.url, attempts, error: message(error) });
        }
      }, signal);
    } finally {
      if (signal.aborted) {
        await Promise.allSettled([...context.openUploads.values()].map((u) => dest.abortMultipart(u.key, u.uploadId)));
      }
    }
    if (signal.aborted) throw new InterruptedError("run interrupted");

    if (config.delete && decided.extra.length > 0) {
      const result = await dest.deleteKeys(decided.extra);
      deleted = result.deleted.length;
      for (const key of result.deleted) {
        listed.delete(key);
        known.delete(key);
        reporter.objectDone({ type: "deleted", key });
      }
      for (const f of result.failed) {
        errors.push({ key: f.key, error: `delete failed: ${f.message}` });
        reporter.objectDone({ type: "failed", key: f.key, error: `delete failed: ${f.message}` });
      }
    }

    // This shard's index: every object of the shard now in the destination, with lineage.
    const changed = written.size > 0 || deleted > 0;
    for (const [key, entry] of written) known.set(key, entry);
    const shardEntries: IndexEntry[] = [];
    for (const key of new Set([...listed.keys(), ...written.keys()])) {
      if (!inShard(key.slice(destPrefix.length), config.shard)) continue;
      const entry = known.get(key);
      const now = written.get(key) ?? listed.get(key);
      if (entry && now && unquoteEtag(entry.etag) === unquoteEtag(now.etag)) shardEntries.push({ ...entry, etag: now.etag });
    }
    // Independent writes (this shard's index; the prefix's manifest): at once.
    [, manifest] = await Promise.all([
      writeIndex(dest, destPrefix, config.shard, shardEntries, indexes.files.get(indexKey(destPrefix, config.shard))),
      publishManifest({ dest, destPrefix, known, listed: changed ? undefined : listed, lookup, ...(manifestRead ? { existing: manifestRead } : {}) }),
    ]);
  }

  const seconds = (performance.now() - started) / 1000;
  const destRequests: Record<string, number> = {};
  for (const [name, count] of dest.requests) {
    const delta = count - (requestsBefore.get(name) ?? 0);
    if (delta > 0) destRequests[name] = delta;
  }
  const price = source.egress === "none" ? 0 : config.egressUsdPerGiB;
  const summary: RunSummary = {
    type: "summary",
    source: source.url,
    dest: config.dest.url,
    shard: shardText,
    dryRun: config.dryRun,
    listed: sources.length,
    copied,
    skipped: decided.unchanged + decided.sameContent,
    sameContent: decided.sameContent,
    failed: errors.length,
    deleted,
    unverified,
    bytes: copiedBytes,
    sourceBytesRead,
    datasetBytes,
    seconds: Math.round(seconds * 1000) / 1000,
    bytesPerSecond: seconds > 0 ? Math.round(copiedBytes / seconds) : 0,
    egressUsdPerGiB: price,
    egressUsd: egressUsd(sourceBytesRead, price),
    egressUsdPerTrainingRunWithoutFerry: egressUsd(datasetBytes, price),
    staleUploadsAborted,
    manifest,
    destRequests,
    errors,
  };
  reporter.log("info", "run finished", { copied, skipped: summary.skipped, failed: summary.failed, deleted, bytes: copiedBytes, seconds: summary.seconds });
  return summary;
}
