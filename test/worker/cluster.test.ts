// Pool membership inside workerd: joining needs a key whose policy lists the cluster and a
// body signed by its SHA-256; members expire lazily after their TTL, keep their place when
// they heartbeat again, leave at once; the peer credential is stable and only for members.
import { describe, expect, it } from "vitest";
import { sha256Hex, signRequest, type Credentials } from "../../s3/sigv4.ts";
import { ORIGIN, edgeFetch, grant, issueKey, unique } from "./helpers.ts";

async function call(key: Credentials, method: string, path: string, json?: unknown, options: { hashOf?: string } = {}): Promise<Response> {
  const url = new URL(`${ORIGIN}/_ferry/clusters/${path}`);
  const body = json === undefined ? "" : JSON.stringify(json);
  const headers = await signRequest({ method, url, credentials: key, payloadHash: await sha256Hex(options.hashOf ?? body), headers: body ? { "content-type": "application/json" } : {} });
  return edgeFetch(url, { method, headers, ...(body ? { body } : {}) });
}

const heartbeat = (peer: string, figures: Record<string, number> = {}, ttlMs = 5_000) => ({ peer, capacityBytes: 1_000, ttlMs, figures });

interface Joined {
  memberId: string;
  credential: Credentials;
  members: Array<{ id: string; peer: string; capacityBytes: number }>;
}

describe("cluster membership", () => {
  it("lets a key with the cluster join, lists live members, and hands out one stable peer credential", async () => {
    const cluster = unique("c");
    const key = await issueKey({ grants: [grant("read", "datasets")], clusters: [cluster] });
    const a = (await (await call(key, "POST", `${cluster}/members`, heartbeat("10.0.0.1:9000"))).json()) as Joined;
    const res = await call(key, "POST", `${cluster}/members`, heartbeat("10.0.0.2:9000"));
    expect(res.status).toBe(200);
    const b = (await res.json()) as Joined;
    expect(b.members.map((m) => m.id)).toEqual(["10.0.0.1:9000", "10.0.0.2:9000"]);
    expect(a.credential).toEqual(b.credential);
    expect(b.credential.accessKeyId).toMatch(/^FRYPOOL/);
    expect(b.credential.accessKeyId).not.toBe(key.accessKeyId);
  });

  it("refuses a key without the cluster, an unsigned call, a tampered body and bad input", async () => {
    const cluster = unique("c");
    const other = await issueKey({ grants: [grant("read", "datasets")], clusters: ["elsewhere"] });
    const member = await issueKey({ grants: [grant("read", "datasets")], clusters: [cluster] });
    expect((await call(other, "POST", `${cluster}/members`, heartbeat("10.0.0.1:9000"))).status).toBe(403);
    expect((await call(other, "GET", cluster)).status).toBe(403);
    const unsigned = await edgeFetch(`${ORIGIN}/_ferry/clusters/${cluster}/members`, { method: "POST", body: JSON.stringify(heartbeat("10.0.0.1:9000")) });
    expect(unsigned.status).toBe(403);
    expect((await call(member, "POST", `${cluster}/members`, heartbeat("10.0.0.1:9000"), { hashOf: "something else" })).status).toBe(403);
    expect((await call(member, "POST", `${cluster}/members`, { peer: "no port", capacityBytes: 1, ttlMs: 5000 })).status).toBe(400);
    expect((await call(member, "POST", `${cluster}/members`, { ...heartbeat("10.0.0.1:9000"), ttlMs: 10 })).status).toBe(400);
    const view = (await (await call(member, "GET", cluster)).json()) as { members: unknown[] };
    expect(view.members).toEqual([]);
  });

  it("drops a member that misses heartbeats, keeps the place of one that comes back, and lets one leave at once", async () => {
    const cluster = unique("c");
    const key = await issueKey({ grants: [grant("read", "datasets")], clusters: [cluster] });
    await call(key, "POST", `${cluster}/members`, heartbeat("10.0.0.1:9000", {}, 1_000));
    await call(key, "POST", `${cluster}/members`, heartbeat("10.0.0.2:9000", {}, 60_000));
    await call(key, "POST", `${cluster}/members`, heartbeat("10.0.0.3:9000", {}, 60_000));
    const before = (await (await call(key, "GET", cluster)).json()) as { members: Array<{ id: string; joinedAt: string }> };
    await new Promise((r) => setTimeout(r, 1_200));
    const after = (await (await call(key, "GET", cluster)).json()) as { members: Array<{ id: string; joinedAt: string }> };
    expect(after.members.map((m) => m.id)).toEqual(["10.0.0.2:9000", "10.0.0.3:9000"]);
    // A restart heartbeats under the same id: same row, same join time.
    await call(key, "POST", `${cluster}/members`, heartbeat("10.0.0.2:9000", {}, 60_000));
    const again = (await (await call(key, "GET", cluster)).json()) as { members: Array<{ id: string; joinedAt: string }> };
    expect(again.members.find((m) => m.id === "10.0.0.2:9000")?.joinedAt).toBe(before.members.find((m) => m.id === "10.0.0.2:9000")?.joinedAt);
    const left = await call(key, "DELETE", `${cluster}/members/${encodeURIComponent("10.0.0.3:9000")}`);
    expect(await left.json()).toMatchObject({ left: true });
    const final = (await (await call(key, "GET", cluster)).json()) as { members: Array<{ id: string }> };
    expect(final.members.map((m) => m.id)).toEqual(["10.0.0.2:9000"]);
  });

  it("shows members' figures and the cluster's origin amplification", async () => {
    const cluster = unique("c");
    const key = await issueKey({ grants: [grant("read", "datasets")], clusters: [cluster] });
    await call(key, "POST", `${cluster}/members`, heartbeat("10.0.0.1:9000", { edgeBytes: 300, distinctBytes: 200, peerBytes: 50 }));
    await call(key, "POST", `${cluster}/members`, heartbeat("10.0.0.2:9000", { edgeBytes: 100, distinctBytes: 200, bogus: Number.NaN }));
    const view = (await (await call(key, "GET", cluster)).json()) as { originAmplification: number; totals: Record<string, number>; members: Array<{ figures: Record<string, number> }> };
    expect(view.originAmplification).toBe(1);
    expect(view.totals).toMatchObject({ edgeBytes: 400, distinctBytes: 400, peerBytes: 50 });
    expect(view.members[1]?.figures).toEqual({ edgeBytes: 100, distinctBytes: 200 });
  });
});
