// The node palette: the server's catalogue grouped by category, searchable; unavailable nodes are
// greyed with their reason. Drag an item onto the canvas, or click (Enter) to add it in view.

import { useMemo, useState, type DragEvent } from "react";
import type { NodeDef } from "../api/types";
import { formatPrice } from "../lib/format";
import { PALETTE_MIME } from "./Canvas";

export function groupCatalog(defs: readonly NodeDef[], query: string): [string, NodeDef[]][] {
  const needle = query.trim().toLowerCase();
  const groups = new Map<string, NodeDef[]>();
  for (const def of defs) {
    const haystack = `${def.displayName} ${def.type} ${def.category} ${def.description ?? ""}`.toLowerCase();
    if (needle && !needle.split(/\s+/).every((word) => haystack.includes(word))) continue;
    const category = def.category || def.type.split(".")[0] || "other";
    groups.set(category, [...(groups.get(category) ?? []), def]);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([category, items]) => [category, items.sort((a, b) => a.displayName.localeCompare(b.displayName))]);
}

export function Palette({ defs, onAdd }: { defs: readonly NodeDef[]; onAdd: (nodeType: string) => void }) {
  const [query, setQuery] = useState("");
  const groups = useMemo(() => groupCatalog(defs, query), [defs, query]);

  function onDragStart(event: DragEvent, def: NodeDef) {
    event.dataTransfer.setData(PALETTE_MIME, def.type);
    event.dataTransfer.setData("text/plain", def.type);
    event.dataTransfer.effectAllowed = "copy";
  }

  return (
    <aside className="palette" aria-label="Node palette" data-testid="palette">
      <input
        type="search"
        className="search"
        placeholder="Search nodes"
        aria-label="Search nodes"
        value={query}
        onChange={(event) => setQuery(event.target.value)}
        data-testid="palette-search"
      />
      {groups.length === 0 && <p className="muted small" data-testid="palette-empty">No node matches “{query}”.</p>}
      <div className="palette-groups">
        {groups.map(([category, items]) => (
          // ComfyUI's hundreds of node types start folded (their groups open while searching)
          <details key={category} open={!category.startsWith("comfyui") || query.trim() !== ""} className="palette-group" data-testid={`palette-category-${category}`}>
            <summary>
              {category} <span className="muted">{items.length}</span>
            </summary>
            <ul>
              {items.map((def) => {
                const price = formatPrice(def.credits);
                return (
                  <li key={def.type}>
                    <div
                      role="button"
                      tabIndex={def.available ? 0 : -1}
                      aria-disabled={!def.available}
                      draggable={def.available}
                      className={def.available ? "palette-item" : "palette-item unavailable"}
                      title={def.available ? `${def.description ?? def.type}\nDrag onto the canvas, or click to add.` : def.unavailableReason ?? "Unavailable"}
                      data-testid={`palette-item-${def.type}`}
                      data-available={def.available ? "true" : "false"}
                      onDragStart={(event) => onDragStart(event, def)}
                      onClick={() => def.available && onAdd(def.type)}
                      onKeyDown={(event) => {
                        if (def.available && (event.key === "Enter" || event.key === " ")) {
                          event.preventDefault();
                          onAdd(def.type);
                        }
                      }}
                    >
                      <span className="palette-item-name">{def.displayName}</span>
                      {price && <span className="price">{price}</span>}
                      {def.resources === "gpu" && <span className="badge badge-small">GPU</span>}
                      {def.description && <span className="palette-item-desc">{def.description}</span>}
                      {!def.available && (
                        <span className="palette-item-reason" data-testid={`palette-reason-${def.type}`}>
                          {def.unavailableReason ?? "Unavailable on this server."}
                        </span>
                      )}
                    </div>
                  </li>
                );
              })}
            </ul>
          </details>
        ))}
      </div>
    </aside>
  );
}
