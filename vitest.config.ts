// Two test projects: `workers` runs inside workerd (the edge and the runtime-neutral S3
// core), `node` runs everything that needs real processes, files and clients.
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // The edge writes one audit line per request; keep test output readable.
    onConsoleLog: (log: string) => (log.includes('"msg":"s3 request"') ? false : undefined),
    projects: [
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                FERRY_ADMIN_TOKEN: "test-admin-token",
                FERRY_KEY_ENCRYPTION_KEY: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
              },
            },
          }),
        ],
        test: {
          name: "workers",
          include: ["test/worker/**/*.test.ts", "s3/**/*.test.ts"],
          // CI machines are small and busy: a slow test is not a failed one.
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "node",
          include: ["s3/**/*.test.ts", "cli/**/*.test.ts", "sample/**/*.test.ts", "replicator/**/*.test.ts", "node-agent/**/*.test.ts", "test/**/*.test.ts"],
          exclude: ["test/worker/**", "node_modules/**"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
