// Rendezvous placement: deterministic, balanced by weight, and stable — removing a member
// moves only its own blocks, adding one moves blocks only to it.
import { describe, expect, it } from "vitest";
import { blockKeyOf, rankOwners, type PeerMember } from "./rendezvous.ts";

const member = (id: string, capacityBytes = 1000): PeerMember => ({ id, peer: id, capacityBytes });
const blocks = Array.from({ length: 4000 }, (_, i) => blockKeyOf("datasets", `robots/ep${i % 97}.h5`, "etag", i));
const owners = (members: PeerMember[]) => blocks.map((b) => rankOwners(b, members)[0]?.id);

describe("rankOwners", () => {
  const four = ["10.0.0.1:9000", "10.0.0.2:9000", "10.0.0.3:9000", "10.0.0.4:9000"].map((id) => member(id));

  it("is deterministic and independent of member order", () => {
    expect(owners(four)).toEqual(owners([...four].reverse()));
    expect(rankOwners(blocks[0] ?? "", four).map((m) => m.id).sort()).toEqual(four.map((m) => m.id).sort());
  });

  it("spreads blocks evenly over equal members and in proportion to capacity", () => {
    const count = (ids: Array<string | undefined>, id: string) => ids.filter((x) => x === id).length;
    for (const m of four) expect(count(owners(four), m.id) / blocks.length).toBeCloseTo(0.25, 1);
    const weighted = [member("a", 3000), member("b", 1000)];
    expect(count(owners(weighted), "a") / blocks.length).toBeCloseTo(0.75, 1);
  });

  it("moves only the removed member's blocks, to the next choice", () => {
    const before = owners(four);
    const without = four.filter((m) => m.id !== "10.0.0.3:9000");
    const after = owners(without);
    blocks.forEach((b, i) => {
      if (before[i] === "10.0.0.3:9000") expect(after[i]).toBe(rankOwners(b, four)[1]?.id);
      else expect(after[i]).toBe(before[i]);
    });
  });

  it("moves blocks only to a member that joins, and never to a member of weight 0", () => {
    const before = owners(four);
    const after = owners([...four, member("10.0.0.5:9000")]);
    blocks.forEach((_, i) => {
      if (after[i] !== before[i]) expect(after[i]).toBe("10.0.0.5:9000");
    });
    expect(owners([...four, member("observer", 0)])).toEqual(before);
    expect(rankOwners("x", [member("observer", 0)])).toEqual([]);
  });
});
