// Google Cloud Storage as a source (gs://bucket/prefix) through @google-cloud/storage:
// credentials from the usual Google variables (GOOGLE_APPLICATION_CREDENTIALS, metadata
// server), or STORAGE_EMULATOR_HOST for a local emulator. The version is the generation,
// and reads pin it, so an object rewritten mid-copy is never mixed with its old bytes.
// md5Hash and crc32c come with the listing (composite objects have only crc32c).
import { Storage } from "@google-cloud/storage";
import type { BucketLocation } from "../locations.ts";
import { InputError, SourceChangedError, TransferError } from "../errors.ts";
import type { OpenedObject, Source, SourceObject } from "./source.ts";

const LIST_FIELDS = "items(name,size,generation,md5Hash,crc32c,contentType),nextPageToken";

interface GcsMetadata {
  name?: string;
  size?: string | number;
  generation?: string | number;
  md5Hash?: string;
  crc32c?: string;
  contentType?: string;
}

function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "number" ? code : undefined;
}

function isCredentialError(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /Could not load the default credentials|Unable to detect a Project Id|invalid_grant|Could not refresh access token|The file at .* does not exist|GOOGLE_APPLICATION_CREDENTIALS/i.test(message);
}

function inputError(error: unknown, bucket: string): InputError {
  const status = statusOf(error);
  if (isCredentialError(error)) {
    return new InputError("no Google credentials: set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file (or run on a host with a service account; STORAGE_EMULATOR_HOST for a local emulator)", { cause: error });
  }
  if (status === 404) return new InputError(`source bucket does not exist: gs://${bucket}`, { cause: error });
  if (status === 401 || status === 403) return new InputError(`the Google credentials may not read gs://${bucket} (${status}): grant roles/storage.objectViewer`, { cause: error });
  const firstLine = (error instanceof Error ? error.message : String(error)).split("\n")[0] ?? "";
  return new InputError(`cannot reach source gs://${bucket}: ${firstLine}`, { cause: error });
}

export function createGcsSource(location: BucketLocation, options: { projectId?: string | undefined } = {}): Source {
  const storage = new Storage({
    ...(options.projectId ? { projectId: options.projectId } : {}),
    retryOptions: { autoRetry: true, maxRetries: 4, retryDelayMultiplier: 2, maxRetryDelay: 8 },
  });
  const { bucket: bucketName, prefix } = location;
  const bucket = storage.bucket(bucketName);
  const toObject = (m: GcsMetadata): SourceObject | undefined => {
    if (!m.name || m.name.endsWith("/")) return undefined; // folder placeholders hold no data
    return {
      key: m.name.slice(prefix.length),
      url: `gs://${bucketName}/${m.name}`,
      size: Number(m.size ?? 0),
      version: String(m.generation ?? ""),
      crc32c: m.crc32c,
      md5: m.md5Hash,
      contentType: m.contentType,
    };
  };
  return {
    url: location.url,
    egress: "gcs",
    async check() {
      // Nothing to do: the listing itself fails first with a clear InputError (a missing
      // bucket is a 404; bad credentials fail there too). bucket.exists() would need
      // storage.buckets.get, which a reader role may lack (and the emulator lacks it).
    },
    async *list(signal) {
      let pageToken: string | undefined;
      do {
        signal.throwIfAborted();
        let page: { items?: GcsMetadata[]; nextPageToken?: string };
        try {
          // The raw JSON page: items with exactly the listed fields, no File objects.
          const response = await bucket.getFiles({ prefix, autoPaginate: false, maxResults: 1000, fields: LIST_FIELDS, ...(pageToken ? { pageToken } : {}) });
          page = (response[2] ?? {}) as { items?: GcsMetadata[]; nextPageToken?: string };
        } catch (error) {
          throw inputError(error, bucketName);
        }
        for (const item of page.items ?? []) {
          const object = toObject(item);
          if (object) yield object;
        }
        pageToken = page.nextPageToken;
      } while (pageToken);
    },
    async stat(key) {
      try {
        const [metadata] = await bucket.file(prefix + key).getMetadata();
        return toObject(metadata as GcsMetadata);
      } catch (error) {
        if (statusOf(error) === 404) return undefined;
        throw error;
      }
    },
    async open(object, signal): Promise<OpenedObject> {
      const file = bucket.file(prefix + object.key, object.version ? { generation: object.version } : {});
      // Stored bytes exactly (no gunzip of gzip-encoded objects): the checksums are theirs.
      const stream = file.createReadStream({ validation: false, decompress: false });
      const onAbort = () => stream.destroy(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
      signal.addEventListener("abort", onAbort, { once: true });
      async function* body(): AsyncGenerator<Uint8Array> {
        try {
          for await (const chunk of stream) yield chunk as Buffer;
        } catch (error) {
          const status = statusOf(error);
          if (status === 404) throw new SourceChangedError(`source generation is gone (object rewritten or deleted): ${object.url}#${object.version}`, { cause: error });
          throw new TransferError(`read failed: ${object.url}: ${error instanceof Error ? error.message : String(error)}`, { retryable: status === undefined || status === 429 || status >= 500, cause: error });
        } finally {
          signal.removeEventListener("abort", onAbort);
          stream.destroy();
        }
      }
      return { declared: { crc32c: object.crc32c, md5: object.md5 }, body: body() };
    },
    async close() {},
  };
}
