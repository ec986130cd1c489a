// Block placement by weighted rendezvous (highest-random-weight) hashing: every node ranks
// the live members for a block the same way, with no coordination. Removing a member only
// moves the blocks it owned; a member's share is proportional to its weight (capacity).
// Members of weight 0 (observers, e.g. tools holding the credential) own nothing.
import { createHash } from "node:crypto";

export interface PeerMember {
  /** Stable identity (the peer address): the hash input, so a restart keeps its blocks. */
  id: string;
  /** HOST:PORT of its peer listener. */
  peer: string;
  capacityBytes: number;
}

/** A uniform number in (0, 1) from the member and block identities. */
function unitHash(memberId: string, blockKey: string): number {
  const digest = createHash("sha256").update(memberId).update("\0").update(blockKey).digest();
  // 52 bits fit a double exactly; +1 keeps it off 0 so the log below is finite.
  const high = digest.readUInt32BE(0) >>> 12;
  const low = digest.readUInt32BE(4);
  return (high * 2 ** 32 + low + 1) / (2 ** 52 + 2);
}

/** The members in owner order for this block: first is the owner, then the next choices. */
export function rankOwners<M extends PeerMember>(blockKey: string, members: readonly M[]): M[] {
  const scored: Array<{ member: M; score: number }> = [];
  for (const member of members) {
    if (!(member.capacityBytes > 0)) continue;
    // Weighted HRW (Schindelhauer & Schomaker): -w / ln(u) keeps shares proportional to w.
    scored.push({ member, score: -member.capacityBytes / Math.log(unitHash(member.id, blockKey)) });
  }
  scored.sort((a, b) => b.score - a.score || (a.member.id < b.member.id ? -1 : 1));
  return scored.map((s) => s.member);
}

/** The key blocks are placed by: a block of one object version. */
export function blockKeyOf(bucket: string, key: string, etag: string, index: number): string {
  return `${bucket}\n${key}\n${etag}\n${index}`;
}
