// The admin API under /_ferry/admin: bearer-token guard (and no token configured at all),
// input validation with JSON errors, issuing, listing without secrets, and revocation.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../worker/src/index.ts";
import { ADMIN_TOKEN, ORIGIN, adminFetch, edgeFetch, grant, issueKey, revokeKey, testEnv } from "./helpers.ts";

interface JsonError {
  error: { code: string; message: string };
}

async function expectJsonError(response: Response, status: number, code: string): Promise<JsonError> {
  expect(response.headers.get("content-type")).toMatch(/^application\/json/);
  const body = (await response.json()) as JsonError;
  expect({ status: response.status, code: body.error.code }).toEqual({ status, code });
  expect(body.error.message).toBeTruthy();
  return body;
}

const validKey = { name: "valid", grants: [grant("read,list", "datasets", "robots/")] };

describe("the admin guard", () => {
  it("refuses a request without a token (401 JSON) and creates nothing", async () => {
    await expectJsonError(await adminFetch("POST", "/keys", { json: { ...validKey, name: "no-token" }, token: null }), 401, "Unauthorized");
    await expectJsonError(await adminFetch("GET", "/keys", { token: null }), 401, "Unauthorized");
    const listed = (await (await adminFetch("GET", "/keys")).json()) as { keys: Array<{ name: string }> };
    expect(listed.keys.map((k) => k.name)).not.toContain("no-token");
  });

  it("refuses a wrong token, a token of another length, and another auth scheme", async () => {
    for (const token of [`${ADMIN_TOKEN.slice(0, -1)}X`, `${ADMIN_TOKEN}-and-more`, "t"]) {
      await expectJsonError(await adminFetch("GET", "/keys", { token }), 401, "Unauthorized");
    }
    const basic = await edgeFetch(`${ORIGIN}/_ferry/admin/keys`, { headers: { authorization: `Basic ${btoa(`admin:${ADMIN_TOKEN}`)}` } });
    await expectJsonError(basic, 401, "Unauthorized");
  });

  it("refuses every admin request when FERRY_ADMIN_TOKEN is not set: there is no default token", async () => {
    const env = { ...testEnv, FERRY_ADMIN_TOKEN: undefined };
    for (const authorization of ["Bearer ", "Bearer undefined", `Bearer ${ADMIN_TOKEN}`, ""]) {
      const ctx = createExecutionContext();
      const request = new Request(`${ORIGIN}/_ferry/admin/keys`, { headers: authorization ? { authorization } : {} });
      const response = await worker.fetch(request, env, ctx);
      await waitOnExecutionContext(ctx);
      await expectJsonError(response, 403, "AdminDisabled");
    }
  });

  it("answers an unknown admin route with 404 JSON", async () => {
    await expectJsonError(await adminFetch("GET", "/nothing-here"), 404, "NotFound");
  });
});

describe("issuing keys", () => {
  it("issues a key with an id, a secret, its grants and clusters", async () => {
    const response = await adminFetch("POST", "/keys", { json: { ...validKey, name: "issued", clusters: ["gpu-a"], expiresInSeconds: 3600 } });
    expect(response.status).toBe(201);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body["accessKeyId"]).toMatch(/^FRY[A-Z2-7]{17}$/);
    expect(body["secretAccessKey"]).toMatch(/^[A-Za-z0-9_-]{40}$/);
    expect(body["grants"]).toEqual(validKey.grants);
    expect(body["clusters"]).toEqual(["gpu-a"]);
    expect(body["status"]).toBe("active");
    const expiresInMs = Date.parse(String(body["expiresAt"])) - Date.now();
    expect(expiresInMs).toBeGreaterThan(3590_000);
    expect(expiresInMs).toBeLessThanOrEqual(3600_000);
  });

  it("refuses a body that is not JSON with 400 InvalidJSON", async () => {
    await expectJsonError(await adminFetch("POST", "/keys", { body: "{name: oops" }), 400, "InvalidJSON");
  });

  it("refuses a grant on a bucket the edge does not have, naming the edge's buckets", async () => {
    const body = await expectJsonError(await adminFetch("POST", "/keys", { json: { name: "nobucket", grants: [grant("read", "nope")] } }), 400, "InvalidInput");
    expect(body.error.message).toContain("datasets");
    expect(body.error.message).toContain("shared");
  });

  it("refuses malformed input with 400 InvalidInput", async () => {
    const bad: unknown[] = [
      { ...validKey, name: "" },
      { ...validKey, name: "has spaces" },
      { ...validKey, grants: [] },
      { ...validKey, grants: [{ bucket: "datasets", actions: ["read", "fly"] }] },
      { ...validKey, grants: [{ bucket: "datasets", actions: [] }] },
      { ...validKey, grants: [{ bucket: "datasets", prefix: 7, actions: ["read"] }] },
      { ...validKey, expiresInSeconds: 0 },
      { ...validKey, expiresInSeconds: 1.5 },
      { ...validKey, clusters: ["Bad Name"] },
      [validKey],
    ];
    for (const json of bad) await expectJsonError(await adminFetch("POST", "/keys", { json }), 400, "InvalidInput");
  });
});

describe("listing and revoking keys", () => {
  it("lists keys with their status and never a secret", async () => {
    const issued = await issueKey({ ...validKey, name: "listed" });
    const text = await (await adminFetch("GET", "/keys")).text();
    expect(text).not.toContain(issued.secretAccessKey);
    expect(text).not.toMatch(/secret|sealed/i);
    const listed = (JSON.parse(text) as { keys: Array<Record<string, unknown>> }).keys.find((k) => k["accessKeyId"] === issued.accessKeyId);
    expect(listed).toMatchObject({ name: "listed", status: "active", grants: validKey.grants, revokedAt: null });
  });

  it("revokes a key (twice is harmless) and lists it as revoked", async () => {
    const issued = await issueKey({ ...validKey, name: "to-revoke" });
    const first = await adminFetch("DELETE", `/keys/${issued.accessKeyId}`);
    expect(first.status).toBe(200);
    const revoked = (await first.json()) as { status: string; revokedAt: string };
    expect(revoked.status).toBe("revoked");
    expect(JSON.stringify(revoked)).not.toContain(issued.secretAccessKey);
    await revokeKey(issued.accessKeyId);
    const again = (await (await adminFetch("DELETE", `/keys/${issued.accessKeyId}`)).json()) as { revokedAt: string };
    expect(again.revokedAt).toBe(revoked.revokedAt);
    const listed = (await (await adminFetch("GET", "/keys")).json()) as { keys: Array<{ accessKeyId: string; status: string }> };
    expect(listed.keys.find((k) => k.accessKeyId === issued.accessKeyId)?.status).toBe("revoked");
  });

  it("answers revoking an unknown key with 404 JSON", async () => {
    await expectJsonError(await adminFetch("DELETE", "/keys/FRYAAAAAAAAAAAAAAAAA"), 404, "NoSuchKey");
  });

  it("lists an expired key as expired", async () => {
    const issued = await issueKey({ ...validKey, name: "short", expiresInSeconds: 1 });
    await new Promise((resolve) => setTimeout(resolve, Date.parse(issued.expiresAt ?? "") - Date.now() + 100));
    const listed = (await (await adminFetch("GET", "/keys")).json()) as { keys: Array<{ accessKeyId: string; status: string }> };
    expect(listed.keys.find((k) => k.accessKeyId === issued.accessKeyId)?.status).toBe("expired");
  });
});
