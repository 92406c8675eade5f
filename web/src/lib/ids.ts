// Readable, unique node ids: "generate.flux_2_pro" → "flux_2_pro", then "flux_2_pro_2", …
// Ids appear in execution results (`nodes` maps node id to its result), so they are worth reading.

export function idBase(nodeType: string): string {
  const last = nodeType.split(".").pop() ?? nodeType;
  const cleaned = last.toLowerCase().replace(/[^a-z0-9_]+/g, "_").replace(/^_+|_+$/g, "");
  return cleaned || "node";
}

export function uniqueNodeId(nodeType: string, taken: ReadonlySet<string>): string {
  const base = idBase(nodeType);
  if (!taken.has(base)) return base;
  for (let n = 2; ; n += 1) {
    const candidate = `${base}_${n}`;
    if (!taken.has(candidate)) return candidate;
  }
}

/** A fresh id for a copy of `id`, keeping its readable stem ("gen_3" → "gen_4" if free). */
export function copyId(id: string, taken: ReadonlySet<string>): string {
  const stem = id.replace(/_\d+$/, "") || "node";
  if (!taken.has(stem)) return stem;
  for (let n = 2; ; n += 1) {
    const candidate = `${stem}_${n}`;
    if (!taken.has(candidate)) return candidate;
  }
}
