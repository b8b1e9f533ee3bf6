"""Drawing a lineage graph as SVG, with a layered layout in plain Python.

Sources on the left, derived assets to the right: each node's column is the length
of the longest path reaching it; within a column, nodes are ordered by the average
position of their neighbours (a few sweeps right and left), which keeps most edges
from crossing. Pure functions: graph in (as :func:`.lineage.lineage` returns it),
SVG text out.
"""

from __future__ import annotations

from collections import defaultdict
from xml.sax.saxutils import escape, quoteattr

NODE_W, NODE_H = 190, 44
GAP_X, GAP_Y = 70, 18
MARGIN = 20
MAX_LABEL = 24
#: larger graphs are cut to the nodes nearest the asset, with a note saying so
MAX_NODES = 250

COLORS = {
    "product": ("#dbeafe", "#1d4ed8"),
    "asset": ("#dcfce7", "#15803d"),
    "derived": ("#ffedd5", "#c2410c"),
}


def layers(node_ids: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """The column of each node: the longest path from a source to it (cycles, which
    lineage should never have, are broken where they are met)."""
    preds: dict[str, list[str]] = defaultdict(list)
    for s, t in edges:
        preds[t].append(s)
    column: dict[str, int] = {}
    visiting: set[str] = set()

    def depth(n: str) -> int:
        if n in column:
            return column[n]
        if n in visiting:
            return 0
        visiting.add(n)
        # recursion depth is bounded by MAX_NODES: graphs are trimmed first
        d = 1 + max((depth(p) for p in preds.get(n, ())), default=-1)
        visiting.discard(n)
        column[n] = d
        return d

    for n in node_ids:
        depth(n)
    return column


def order(columns: dict[str, int], edges: list[tuple[str, str]], sweeps: int = 4) -> list[list[str]]:
    """Nodes per column, ordered to reduce crossings (barycenter heuristic)."""
    count = max(columns.values(), default=-1) + 1
    ranks: list[list[str]] = [[] for _ in range(count)]
    for n in sorted(columns):
        ranks[columns[n]].append(n)
    preds: dict[str, list[str]] = defaultdict(list)
    succs: dict[str, list[str]] = defaultdict(list)
    for s, t in edges:
        preds[t].append(s)
        succs[s].append(t)

    def reorder(rank: list[str], neighbours, position: dict[str, int]) -> list[str]:
        def key(n: str):
            near = [position[m] for m in neighbours[n] if m in position]
            return (sum(near) / len(near) if near else position.get(n, 0), n)

        return sorted(rank, key=key)

    for sweep in range(sweeps):
        position = {n: i for rank in ranks for i, n in enumerate(rank)}
        if sweep % 2 == 0:
            for c in range(1, count):
                ranks[c] = reorder(ranks[c], preds, position)
                position.update({n: i for i, n in enumerate(ranks[c])})
        else:
            for c in range(count - 2, -1, -1):
                ranks[c] = reorder(ranks[c], succs, position)
                position.update({n: i for i, n in enumerate(ranks[c])})
    return ranks


def _trim(graph: dict, limit: int) -> tuple[list[dict], list[tuple[str, str, str]], int]:
    nodes = {n["id"]: n for n in graph["nodes"]}
    edges = [(e["source"], e["target"], e["kind"]) for e in graph["edges"]]
    if len(nodes) <= limit:
        return list(nodes.values()), edges, 0
    # keep the nodes fewest steps from the asset itself
    adjacent: dict[str, set[str]] = defaultdict(set)
    for s, t, _ in edges:
        adjacent[s].add(t)
        adjacent[t].add(s)
    start = graph["asset"]["id"]
    kept, frontier = {start}, [start]
    while frontier and len(kept) < limit:
        nxt = []
        for n in frontier:
            for m in sorted(adjacent[n]):
                if m not in kept and len(kept) < limit:
                    kept.add(m)
                    nxt.append(m)
        frontier = nxt
    return (
        [nodes[n] for n in nodes if n in kept],
        [(s, t, k) for s, t, k in edges if s in kept and t in kept],
        len(nodes) - len(kept),
    )


def _label(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def render(graph: dict, max_nodes: int = MAX_NODES) -> str:
    """The SVG document of a lineage graph."""
    nodes, edges, hidden = _trim(graph, max_nodes)
    plain_edges = [(s, t) for s, t, _ in edges]
    columns = layers([n["id"] for n in nodes], plain_edges)
    ranks = order(columns, plain_edges)
    tallest = max((len(r) for r in ranks), default=1)
    height = MARGIN * 2 + tallest * NODE_H + (tallest - 1) * GAP_Y + (24 if hidden else 0)
    width = MARGIN * 2 + len(ranks) * NODE_W + max(len(ranks) - 1, 0) * GAP_X
    place: dict[str, tuple[float, float]] = {}
    for c, rank in enumerate(ranks):
        column_height = len(rank) * NODE_H + (len(rank) - 1) * GAP_Y
        top = MARGIN + (tallest * NODE_H + (tallest - 1) * GAP_Y - column_height) / 2
        for i, n in enumerate(rank):
            place[n] = (MARGIN + c * (NODE_W + GAP_X), top + i * (NODE_H + GAP_Y))

    title = f"Lineage of {graph['asset']['name']}"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label={quoteattr(title)} '
        'font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" "
        "markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\">"
        "<path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#64748b\"/></marker></defs>",
    ]
    for s, t, kind in edges:
        (x1, y1), (x2, y2) = place[s], place[t]
        x1, y1, x2, y2 = x1 + NODE_W, y1 + NODE_H / 2, x2, y2 + NODE_H / 2
        bend = max((x2 - x1) / 2, GAP_X / 2)
        dash = ' stroke-dasharray="4 3"' if kind == "part_of" else ""
        out.append(
            f'<path class="edge {kind}" data-source="{escape(s)}" data-target="{escape(t)}" '
            f'd="M {x1:.1f} {y1:.1f} C {x1 + bend:.1f} {y1:.1f}, {x2 - bend:.1f} {y2:.1f}, '
            f'{x2:.1f} {y2:.1f}" fill="none" stroke="#64748b" stroke-width="1.4"{dash} '
            'marker-end="url(#arrow)"/>'
        )
    for n in nodes:
        x, y = place[n["id"]]
        style = "product" if n["type"] == "product" else ("derived" if n.get("derived") else "asset")
        fill, stroke = COLORS[style]
        width_px = 3 if n["relation"] == "self" else 1.2
        subtitle = {
            "product": "product",
            "asset": f"asset of {n.get('product') or '?'}",
            "derived": "derived asset",
        }[style]
        out.append(
            f'<g class="node {style} {n["relation"]}" data-id="{escape(n["id"])}">'
            f"<title>{escape(n['name'])} ({subtitle})</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="6" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="{width_px}"/>'
            f'<text x="{x + 10:.1f}" y="{y + 18:.1f}" font-weight="bold">{escape(_label(n["name"]))}</text>'
            f'<text x="{x + 10:.1f}" y="{y + 34:.1f}" fill="#475569">{escape(_label(subtitle))}</text>'
            "</g>"
        )
    if hidden:
        out.append(
            f'<text x="{MARGIN}" y="{height - MARGIN / 2:.1f}" fill="#475569">'
            f"{hidden} more node(s) not drawn: GET the lineage JSON for the whole graph</text>"
        )
    out.append("</svg>")
    return "\n".join(out)
