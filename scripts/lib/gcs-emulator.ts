// A real GCS-protocol server in this process: the Cloud Storage emulator that ships in
// `firebase-tools`, without its CLI (which needs Java and a rules-runtime download). It
// speaks the JSON API that @google-cloud/storage uses (point STORAGE_EMULATOR_HOST at
// `url`). Blobs live in a private temp directory, removed on stop.
// Quirks of the emulator (not of GCS): any request naming a bucket creates it, uploads
// over 130 MB must be chunked, and downloads are served from one in-memory buffer.
import { mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface GcsEmulator {
  /** Base URL for STORAGE_EMULATOR_HOST, e.g. http://127.0.0.1:9199 */
  url: string;
  port: number;
  /**
   * Stores an object directly in the running emulator, for objects beyond its 130 MB
   * request-body limit (its chunked resumable upload finalizes after the first chunk).
   * Reads still go through the HTTP API like any other object.
   */
  putLarge(bucket: string, name: string, bytes: Uint8Array, contentType?: string): Promise<void>;
  stop(): Promise<void>;
}

interface Upload {
  status: string;
}
interface EmulatorInstance {
  getName(): string;
  reset(): void;
  readonly uploadService: { mediaUpload(request: { bucketId: string; objectId: string; dataRaw: Buffer; contentType?: string | undefined }): Upload };
  readonly adminStorageLayer: { createBucket(id: string): void; uploadObject(upload: Upload): Promise<unknown> };
}
type EmulatorCtor = new (args: { projectId: string; host: string; port: number; rules: unknown[]; auto_download: boolean }) => EmulatorInstance;
interface ExpressApp {
  listen(port: number, host: string, callback: () => void): Server;
}

const require = createRequire(import.meta.url);

export async function startGcsEmulator(options: { port?: number; host?: string; projectId?: string } = {}): Promise<GcsEmulator> {
  const { StorageEmulator } = require("firebase-tools/lib/emulator/storage") as { StorageEmulator: EmulatorCtor };
  const { EmulatorRegistry } = require("firebase-tools/lib/emulator/registry") as { EmulatorRegistry: { set(name: string, instance: unknown): void } };
  const { createApp } = require("firebase-tools/lib/emulator/storage/server") as { createApp(projectId: string, emulator: unknown): Promise<ExpressApp> };
  const blobDir = mkdtempSync(join(tmpdir(), "ferry-gcs-"));
  // The emulator keeps blobs in ${tmpdir}/firebase/storage/blobs, shared by every
  // process on the machine; a private directory keeps parallel test files apart.
  class PrivateStorageEmulator extends StorageEmulator {
    getPersistenceTmpDir(): string {
      return blobDir;
    }
  }
  const host = options.host ?? "127.0.0.1";
  const projectId = options.projectId ?? "ferry-local";
  const emulator = new PrivateStorageEmulator({ projectId, host, port: options.port ?? 0, rules: [], auto_download: false });
  EmulatorRegistry.set("storage", emulator);
  const app = await createApp(projectId, emulator);
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(options.port ?? 0, host, () => resolve(s));
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://${host}:${port}`,
    port,
    async putLarge(bucket, name, bytes, contentType) {
      emulator.adminStorageLayer.createBucket(bucket);
      const upload = emulator.uploadService.mediaUpload({ bucketId: bucket, objectId: name, dataRaw: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), contentType });
      await emulator.adminStorageLayer.uploadObject(upload);
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(blobDir, { recursive: true, force: true });
    },
  };
}
