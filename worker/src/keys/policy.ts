// Key policies: statements granting actions on a bucket and key prefix. A grant on
// `robots/` covers `robots/a` but never `robotsX`; listing needs the requested prefix to
// lie inside a granted one. Also parses the CLI's grant syntax `read,list:bucket/prefix`.

export const ACTIONS = ["read", "list", "write", "delete"] as const;
export type Action = (typeof ACTIONS)[number];

export interface Grant {
  bucket: string;
  /** Key prefix; "" is the whole bucket. */
  prefix: string;
  actions: Action[];
}

export interface Policy {
  grants: Grant[];
  /** Clusters whose pool this key's agents may join. */
  clusters: string[];
}

export function isAction(value: string): value is Action {
  return (ACTIONS as readonly string[]).includes(value);
}

/** `read,list:datasets/robots/` → a Grant; `all` means every action. Throws TypeError. */
export function parseGrant(text: string): Grant {
  const colon = text.indexOf(":");
  if (colon < 1) throw new TypeError(`grant "${text}" must look like ACTIONS:BUCKET[/PREFIX], e.g. read,list:datasets/robots/`);
  const actionList = text.slice(0, colon).split(",").map((a) => a.trim().toLowerCase());
  const actions = actionList.includes("all") ? [...ACTIONS] : actionList;
  for (const action of actions) {
    if (!isAction(action)) throw new TypeError(`grant "${text}": unknown action "${action}" (use ${ACTIONS.join(", ")} or all)`);
  }
  const target = text.slice(colon + 1);
  const slash = target.indexOf("/");
  const bucket = slash < 0 ? target : target.slice(0, slash);
  const prefix = slash < 0 ? "" : target.slice(slash + 1);
  if (!/^[a-z0-9][a-z0-9.-]{1,62}$/.test(bucket)) throw new TypeError(`grant "${text}": "${bucket}" is not a bucket name`);
  return { bucket, prefix, actions: [...new Set(actions)] as Action[] };
}


/** May this policy do `action` on the object `key` (or, for list, under `key` as a prefix)? */
export function allows(policy: Policy, action: Action, bucket: string, key: string): boolean {
  return policy.grants.some((g) => g.bucket === bucket && g.actions.includes(action) && key.startsWith(g.prefix));
}

/** Does the policy grant anything at all in this bucket (HeadBucket, ListBuckets)? */
export function touchesBucket(policy: Policy, bucket: string): boolean {
  return policy.grants.some((g) => g.bucket === bucket);
}
