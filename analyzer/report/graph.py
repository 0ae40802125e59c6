"""Edges -> the mesh as an inline SVG: workloads as boxes in namespace columns, edges coloured by status.

Role: a picture an auditor can read for 50+ workloads without a layout engine, computed in Python so the
HTML report needs no script to draw it.  The layout is deterministic (same edges, same picture):

  1. Namespaces are panels.  Each panel stands in a layer (column) given by the longest chain of calls
     between namespaces leading to it (``_layers``): pure callers left, pure callees right; panels of
     one layer are stacked.  Node IPs and IPs outside the pod list form two extra panels ("nodes",
     "outside the pod list").
  2. Inside a panel the same rule spreads workloads over at most ``MAX_INNER_LAYERS`` sub-columns by
     the calls between them (vote-bot | web | emoji, voting), and a sub-column of more than ``MAX_ROWS``
     boxes wraps.
  3. Panels within a layer and boxes within a sub-column are ordered by the mean height of their
     neighbours (two barycentre sweeps, a classic crossing reducer), ties by name.
  4. An edge is a cubic curve from the caller's right side to the callee's left side (or, going back to a
     column on the left, from left side to right side).  Each edge has its own port on each box it
     touches, ports ordered by the height of the other end (``_ports``), and a box grows to give every
     port room: edges into one workload arrive apart, never as one bundle.  Colour *and* dash pattern
     carry the status (each status its own pattern), so the picture survives a grey-scale print.
  5. A column shorter than the tallest is centred in the height, so no corner of the canvas stays empty;
     a name longer than its box is shortened in the middle and keeps its full text as a ``<title>``.

Rules: standard library only; every text is escaped; no external reference (no ``xmlns`` URL either:
inline SVG in HTML needs none).  Nothing here decides anything; it draws ``edges`` rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from .escape import html_text
from .schema import EDGE_STATUSES

SECURED, EXPECTED, UNEXPECTED, MIXED, UNVERIFIED = EDGE_STATUSES
# status -> (stroke colour, dash pattern).  Colours pass WCAG AA on white; dashes tell them apart in grey.
STATUS_STYLE = {
    SECURED: ("#1a7f37", ""),  # solid
    EXPECTED: ("#6e7781", "7 4"),  # dashes
    UNEXPECTED: ("#cf222e", "14 3 3 3 3 3"),  # long dash, two dots
    MIXED: ("#bc4c00", "12 3 3 3"),  # long dash, one dot
    UNVERIFIED: ("#8250df", "2 3"),  # dots
}
# Drawing order: the worst last, so it is on top.
DRAW_ORDER = {SECURED: 0, EXPECTED: 1, MIXED: 2, UNVERIFIED: 3, UNEXPECTED: 4}

MAX_ROWS = 16  # boxes per sub-column before a namespace wraps into another
MAX_INNER_LAYERS = 3  # sub-column layers inside one namespace; deeper call chains fold back (arcs)
BOX_W, BOX_H, ROW_PITCH = 210, 24, 32
COL_GAP = 150  # horizontal room for the curves between two layers
SUBCOL_GAP = 64  # between the sub-columns of one namespace
GROUP_GAP = 40  # between namespaces stacked in one layer
TOP, LEFT, TITLE_H, PAD = 36, 16, 26, 10
LANES, LANE_W = 5, 6.0  # edges sharing a corridor run side by side, this far apart
PORT_PITCH = 9  # vertical room per edge end on one side of a box
CHAR_W, TITLE_CHAR_W = 7.0, 8.4  # generous widths of a 12px / bold 13px sans-serif character, for shortening
NODE_GROUP, OUTSIDE_GROUP = "nodes", "outside the pod list"


@dataclass
class Box:
    """One workload (or node / external IP) box."""

    key: tuple[str, str]  # (namespace, name); namespace "" for nodes and outside peers
    kind: str
    group: str
    meshed: bool | None = None
    edges: list[int] = field(default_factory=list)
    layer: int = 0  # layer inside its namespace (intra-namespace calls)
    sub: int = 0  # physical sub-column inside its panel
    nsub: int = 1  # sub-columns of its panel
    x: float = 0.0
    y: float = 0.0
    h: float = BOX_H  # taller than BOX_H when a side has more ports than fit


@dataclass
class Group:
    """One namespace panel: its boxes in layers (each layer one or more sub-columns)."""

    name: str
    layers: list[list[Box]] = field(default_factory=list)
    layer: int = 0  # the graph layer (column) the panel stands in
    x: float = 0.0
    y: float = 0.0
    width: float = 0.0
    height: float = 0.0

    @property
    def boxes(self) -> list[Box]:
        return [b for layer in self.layers for b in layer]

    def columns(self) -> list[list[Box]]:
        """Physical sub-columns: each layer cut into runs of ``MAX_ROWS``."""
        return [layer[i:i + MAX_ROWS] for layer in self.layers for i in range(0, len(layer), MAX_ROWS)]


def _group(ns: str, kind: str) -> str:
    if ns:
        return ns
    return NODE_GROUP if kind == "node" else OUTSIDE_GROUP


def _boxes(edges: Sequence[dict]) -> dict[tuple[str, str], Box]:
    boxes: dict[tuple[str, str], Box] = {}
    for i, e in enumerate(edges):
        for side in ("src", "dst"):
            key = (e[f"{side}_ns"], e[side])
            box = boxes.get(key)
            if box is None:
                kind = e[f"{side}_kind"]
                box = boxes[key] = Box(key, kind, _group(key[0], kind))
            if e[f"{side}_meshed"] is not None and box.meshed is None:
                box.meshed = bool(e[f"{side}_meshed"])
            box.edges.append(i)
    return boxes


def _order(names: Sequence, arcs: Sequence[tuple]) -> list:
    """A left-to-right order with few arcs pointing back: Eades, Lin and Smyth's greedy heuristic for the
    feedback arc set (sinks go right, sources go left, else the name with most out minus in arcs goes
    left).  Ties break by name, so the order is deterministic."""
    succ = {n: set() for n in names}
    pred = {n: set() for n in names}
    for a, b in arcs:
        if a != b:
            succ[a].add(b)
            pred[b].add(a)
    left: list = []
    right: list = []
    alive = set(names)
    while alive:
        changed = True
        while changed:
            changed = False
            for n in sorted((n for n in alive if not succ[n] & alive), key=str, reverse=True):
                right.append(n)
                alive.discard(n)
                changed = True
            for n in sorted((n for n in alive if not pred[n] & alive), key=str):
                left.append(n)
                alive.discard(n)
                changed = True
        if alive:
            n = max(sorted(alive, key=str), key=lambda m: len(succ[m] & alive) - len(pred[m] & alive))
            left.append(n)
            alive.discard(n)
    return left + right[::-1]


def _layers(names: Sequence, arcs: Sequence[tuple]) -> dict:
    """Longest-path layers over the arcs that point forward in ``_order``; an arc pointing back closes a
    cycle and is ignored, so the result is defined for any graph and deterministic."""
    order = _order(names, arcs)
    index = {n: i for i, n in enumerate(order)}
    succ: dict = {n: set() for n in order}
    for a, b in arcs:
        if index[a] < index[b]:
            succ[a].add(b)
    layer = {n: 0 for n in order}
    for n in order:  # arcs only go forward in ``order``: one pass is a topological pass
        for b in succ[n]:
            layer[b] = max(layer[b], layer[n] + 1)
    return layer


def layout(edges: Sequence[dict]) -> tuple[list[Group], dict[tuple[str, str], Box]]:
    """Place every box and namespace panel (module rules 1-3).  Returns (panels, boxes by key)."""
    boxes = _boxes(edges)
    ends = [((e["src_ns"], e["src"]), (e["dst_ns"], e["dst"])) for e in edges]
    groups: dict[str, Group] = {}
    for box in sorted(boxes.values(), key=lambda b: b.key[1]):
        groups.setdefault(box.group, Group(box.group)).layers.append([box])
    arcs = {(boxes[a].group, boxes[b].group) for a, b in ends if boxes[a].group != boxes[b].group}
    for name, layer in _layers(sorted(groups), sorted(arcs)).items():
        groups[name].layer = layer
    for group in groups.values():
        members = group.boxes
        inner = sorted({(a, b) for a, b in ends if a != b and boxes[a].group == boxes[b].group == group.name})
        depth = {k: min(v, MAX_INNER_LAYERS - 1) for k, v in _layers([b.key for b in members], inner).items()}
        n = max(depth.values()) + 1
        group.layers = [[b for b in members if depth[b.key] == i] for i in range(n)]
        for b in members:
            b.layer = depth[b.key]
    panels = sorted(groups.values(), key=lambda g: (g.layer, g.name))
    _place(panels)
    for _ in range(2):  # barycentre sweeps: panels within a layer, then boxes within a sub-column
        _sort_panels(panels, boxes, ends)
        _place(panels)
        for group in panels:
            for layer in group.layers:
                layer.sort(key=lambda b: _centre(b, ends, boxes))
        _place(panels)
    ports = _ports(ends, boxes)  # x is final: which side each edge end takes is known
    for key, box in boxes.items():
        most = max((len(ports.get((key, side), ())) for side in "LR"), default=0)
        box.h = max(float(BOX_H), (most + 1) * PORT_PITCH)
    _place(panels)
    return panels, boxes


def _sides(a: Box, b: Box) -> tuple[str, str]:
    """The side (L or R) of ``a`` an edge a->b leaves from, and the side of ``b`` it arrives at."""
    if a.key == b.key or abs(a.x - b.x) < 1:  # a loop, or boxes one above the other: arcs on the right
        return "R", "R"
    return ("L", "R") if b.x < a.x else ("R", "L")


def _ports(ends: list, boxes: dict[tuple[str, str], Box]) -> dict[tuple, list[tuple[int, int]]]:
    """(box key, side) -> [(edge index, end)] in port order, top to bottom; end 0 = source, 1 = destination.
    Ordered by the height of the other end, so that edges leave and arrive without crossing at the box."""
    out: dict[tuple, list] = {}
    for i, (a, b) in enumerate(ends):
        sa, sb = _sides(boxes[a], boxes[b])
        out.setdefault((a, sa), []).append((boxes[b].y, i, 0))
        out.setdefault((b, sb), []).append((boxes[a].y, i, 1))
    return {k: [(i, end) for _, i, end in sorted(v)] for k, v in out.items()}


def port_ys(ends: list, boxes: dict[tuple[str, str], Box]) -> list[tuple[float, float]]:
    """(y where edge i leaves its source, y where it reaches its destination), one port per edge end."""
    ys = [[0.0, 0.0] for _ in ends]
    for (key, _), slots in _ports(ends, boxes).items():
        box = boxes[key]
        step = box.h / (len(slots) + 1)
        for rank, (i, end) in enumerate(slots, 1):
            ys[i][end] = box.y + rank * step
    return [(a, b) for a, b in ys]


def _place(panels: list[Group]) -> None:
    """Coordinates: layers left to right, panels stacked top to bottom within a layer, each layer centred
    in the height of the tallest (module rule 5)."""
    x = float(LEFT)
    columns = [[g for g in panels if g.layer == layer] for layer in sorted({g.layer for g in panels})]
    for column in columns:
        y = float(TOP)
        width = 0.0
        for group in column:
            cols = group.columns()
            group.width = len(cols) * BOX_W + (len(cols) - 1) * SUBCOL_GAP + 2 * PAD
            group.height = TITLE_H + max(sum(b.h + ROW_PITCH - BOX_H for b in c) for c in cols) + PAD
            group.x, group.y = x, y
            for i, col in enumerate(cols):
                top = y + TITLE_H
                for box in col:
                    box.sub, box.nsub = i, len(cols)
                    box.x, box.y = x + PAD + i * (BOX_W + SUBCOL_GAP), top
                    top += box.h + ROW_PITCH - BOX_H
            y += group.height + GROUP_GAP
            width = max(width, group.width)
        x += width + COL_GAP
    bottom = {id(c): max(g.y + g.height for g in c) for c in columns}
    tallest = max(bottom.values(), default=0.0)
    for column in columns:
        shift = (tallest - bottom[id(column)]) / 2
        for group in column:
            group.y += shift
            for box in group.boxes:
                box.y += shift


def _neighbours(box: Box, ends: list, boxes: dict[tuple[str, str], Box]) -> list[Box]:
    out = []
    for i in box.edges:
        a, b = ends[i]
        out.append(boxes[b if a == box.key else a])
    return out


def _centre(box: Box, ends: list, boxes: dict[tuple[str, str], Box]) -> tuple[float, str]:
    """Mean y of the box's neighbours outside its sub-column (its own y if none), then its name."""
    ys = [o.y for o in _neighbours(box, ends, boxes) if o.x != box.x]
    return (sum(ys) / len(ys) if ys else box.y, box.key[1])


def _sort_panels(panels: list[Group], boxes: dict[tuple[str, str], Box], ends: list) -> None:
    def centre(group: Group) -> tuple[int, float, str]:
        ys = [o.y for b in group.boxes for o in _neighbours(b, ends, boxes) if o.group != group.name]
        return (group.layer, sum(ys) / len(ys) if ys else group.y, group.name)
    panels.sort(key=centre)


def shorten(text: str, room: float, char_w: float = CHAR_W) -> str:
    """``text`` if it fits in ``room`` pixels, else its start and end around an ellipsis (a pod name's
    hash suffix is what tells two replicas apart)."""
    chars = max(3, int(room / char_w))
    if len(text) <= chars:
        return text
    tail = (chars - 1) // 2
    return text[: chars - 1 - tail] + "\u2026" + text[len(text) - tail:]


def _text(x: float, y: float, full: str, room: float, char_w: float = CHAR_W, cls: str = "", after: str = "") -> str:
    """An SVG ``<text>``, shortened to ``room`` with the full text as its ``<title>`` when cut."""
    shown = shorten(full, room, char_w)
    title = f"<title>{html_text(full)}</title>" if shown != full else ""
    attr = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}"{attr}>{title}{html_text(shown)}{after}</text>'


def _bezier(x1: float, y1: float, x2: float, y2: float) -> str:
    """A curve leaving and arriving horizontally (continues a path: no moveto)."""
    bend = max(40.0, abs(x2 - x1) / 2)
    sign = 1 if x2 >= x1 else -1
    return f" C{x1 + sign * bend:.1f},{y1:.1f} {x2 - sign * bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"


class Router:
    """SVG path data for one edge (module rule 4).  Edges into or out of an inner sub-column of a panel
    run through the corridor beside that sub-column and along the panel's top or bottom margin, so that
    they never pass under another box and seem to end there."""

    def __init__(self, panels: Sequence[Group]):
        self.panels = {g.name: g for g in panels}
        self.used: dict[tuple, int] = {}

    def _lane(self, key: tuple) -> float:
        n = self.used.get(key, 0)
        self.used[key] = n + 1
        return (n % LANES) * LANE_W

    def _margin(self, panel: Group, below: bool) -> float:
        """y of a lane just above (or below) the panel, in the gap between stacked panels."""
        lane = self._lane((panel.name, below))
        return panel.y + panel.height + 6 + lane if below else panel.y - 6 - lane

    def path(self, a: Box, b: Box, ya: float, yb: float) -> str:
        """From ``a``'s port at height ``ya`` to ``b``'s port at ``yb`` (``port_ys``)."""
        if a.key == b.key:  # a workload calling itself (two pods of one deployment)
            x = a.x + BOX_W
            return f"M{x:.1f},{ya:.1f} C{x + 40:.1f},{ya - 21:.1f} {x + 40:.1f},{yb + 21:.1f} {x + 2:.1f},{yb:.1f}"
        if abs(a.x - b.x) < 1:  # one above the other: an arc on the right, wider for boxes further apart
            x = a.x + BOX_W
            reach = 30 + min(SUBCOL_GAP / 2 - 6, abs(ya - yb) / 5)
            return f"M{x:.1f},{ya:.1f} C{x + reach:.1f},{ya:.1f} {x + reach:.1f},{yb:.1f} {x + 3:.1f},{yb:.1f}"
        if b.x < a.x:  # back to a column on the left (a call against the layering)
            return f"M{a.x:.1f},{ya:.1f}" + _bezier(a.x, ya, b.x + BOX_W + 3, yb)
        return self._forward(a, b, ya, yb)

    def _forward(self, a: Box, b: Box, ya: float, yb: float) -> str:
        pa, pb = self.panels[a.group], self.panels[b.group]
        same = pa is pb
        x, y = a.x + BOX_W, ya
        d = f"M{x:.1f},{y:.1f}"
        if a.sub < a.nsub - 1 and not (same and b.sub == a.sub + 1):
            # Out through the corridor right of ``a``, to the margin on ``b``'s side.
            cx = a.x + BOX_W + SUBCOL_GAP / 2 - self._lane((pa.name, "out", a.sub))
            y = self._margin(pa, below=b.y > a.y)
            d += f" L{cx:.1f},{ya:.1f} L{cx:.1f},{y:.1f}"
            x = cx
            if not same:
                x = pa.x + pa.width
                d += f" L{x:.1f},{y:.1f}"
        if b.sub > 0 and not (same and a.sub == b.sub - 1):
            # In along ``b``'s panel margin, down (or up) the corridor left of ``b``.
            cx = b.x - SUBCOL_GAP / 2 + self._lane((pb.name, "in", b.sub))
            if same and x != a.x + BOX_W:  # already on this panel's margin
                ym = y
            else:
                ym = self._margin(pb, below=y > pb.y + pb.height / 2)
                d += _bezier(x, y, pb.x, ym) if x < pb.x else f" L{x:.1f},{ym:.1f}"
            return d + f" L{cx:.1f},{ym:.1f} L{cx:.1f},{yb:.1f} L{b.x - 3:.1f},{yb:.1f}"
        return d + _bezier(x, y, b.x - 3, yb)


def _width(flows: int) -> float:
    return round(1.2 + min(2.8, math.log2(1 + flows) / 2), 2)


def _ref(ns: str, name: str) -> str:
    return f"{ns}/{name}" if ns else name


def render_svg(edges: Sequence[dict]) -> str:
    """The mesh graph as an ``<svg>`` element; ``edges`` are audit-document edge rows (with ``id``)."""
    if not edges:
        return '<p class="empty">No edges: no TCP flow between listed peers was captured.</p>'
    panels, boxes = layout(edges)
    ends = [((e["src_ns"], e["src"]), (e["dst_ns"], e["dst"])) for e in edges]
    ports = port_ys(ends, boxes)
    width = max(g.x + g.width for g in panels) + 60 + LEFT
    height = max(g.y + g.height for g in panels) + TOP
    ids = {key: f"n{i}" for i, key in enumerate(sorted(boxes))}
    out = [f'<svg id="mesh" class="mesh" role="img" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
           f'height="{height:.0f}" aria-label="mesh graph: {len(boxes)} workloads in {len(panels)} groups, '
           f'{len(edges)} edges" data-workloads="{len(boxes)}" data-groups="{len(panels)}" data-edges="{len(edges)}">']
    out.append("<defs>")
    for status, (colour, _) in STATUS_STYLE.items():
        out.append(f'<marker id="arrow-{_slug(status)}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
                   f'markerHeight="7" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
                   f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>')
    out.append("</defs>")
    for group in panels:  # namespace panels behind everything
        cls = "ns outside" if group.name in (NODE_GROUP, OUTSIDE_GROUP) else "ns"
        out.append(f'<g class="{cls}" data-group="{html_text(group.name)}"><rect x="{group.x:.1f}" y="{group.y:.1f}" '
                   f'width="{group.width:.1f}" height="{group.height:.1f}" rx="8"/>'
                   + _text(group.x + PAD, group.y + 17, group.name, group.width - 2 * PAD - 48, TITLE_CHAR_W, "ns-title",
                           f' <tspan class="ns-count">({len(group.boxes)})</tspan>') + '</g>')
    for key in sorted(boxes):  # box outlines under the edges: an edge crossing a box stays visible
        box = boxes[key]
        cls = "box " + ("meshed" if box.meshed else "unmeshed" if box.meshed is False else "unknown")
        if box.kind in ("node", "external", "ambiguous"):
            cls += " peer-" + box.kind
        meshed = {True: "meshed", False: "not meshed", None: "mesh state unknown"}[box.meshed]
        tip = f"{_ref(*key)} ({box.kind}, {meshed}); {len(box.edges)} edges"
        out.append(f'<g class="{cls}" id="node-{ids[key]}" data-node="{ids[key]}" tabindex="0">'
                   f'<title>{html_text(tip)}</title><rect x="{box.x:.1f}" y="{box.y:.1f}" width="{BOX_W}" '
                   f'height="{box.h:.0f}" rx="4"/></g>')
    router = Router(panels)
    order = sorted(range(len(edges)), key=lambda i: (DRAW_ORDER[edges[i]["status"]], i))
    for i in order:
        e = edges[i]
        a, b = boxes[ends[i][0]], boxes[ends[i][1]]
        colour, dash = STATUS_STYLE[e["status"]]
        title = (f"{_ref(e['src_ns'], e['src'])} \u2192 {_ref(e['dst_ns'], e['dst'])}: {e['status']}, "
                 f"{e['flows']} flows (tls {e['tls']}, plaintext {e['plaintext']}, unknown {e['unknown']}), "
                 f"ports {e['ports']}" + (f"; {e['msg']}" if e["msg"] else ""))
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<a href="#edge-{e["id"]}" class="edge" data-status="{html_text(e["status"])}" '
                   f'data-src="{ids[a.key]}" data-dst="{ids[b.key]}"><title>{html_text(title)}</title>'
                   f'<path d="{router.path(a, b, *ports[i])}" stroke="{colour}" stroke-width="{_width(e["flows"])}"{dash_attr} '
                   f'marker-end="url(#arrow-{_slug(e["status"])})"/></a>')
    out.append('<g class="labels">')  # names above the edges, with a white halo
    for key in sorted(boxes):
        box = boxes[key]
        out.append(_text(box.x + PAD, box.y + box.h / 2 + 4, key[1], BOX_W - 2 * PAD))
    out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


def _slug(status: str) -> str:
    return status.lower()


def legend() -> str:
    """The legend: one line sample per status (its colour and dash pattern) and the box styles, as
    small inline SVGs in a row that wraps on a narrow screen."""
    items = []
    for status, (colour, dash) in STATUS_STYLE.items():
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        items.append(f'<span class="legend-item"><svg width="44" height="14" aria-hidden="true">'
                     f'<line x1="2" y1="7" x2="42" y2="7" stroke="{colour}" stroke-width="3"{dash_attr} '
                     f'data-status="{html_text(status)}"/></svg> {html_text(status)}</span>')
    for cls, text in (("meshed", "meshed workload"), ("unmeshed", "not meshed"), ("unknown peer-node", "node / outside")):
        items.append(f'<span class="legend-item"><svg width="24" height="18" aria-hidden="true"><g class="box {cls}">'
                     f'<rect x="1" y="1" width="22" height="16" rx="3"/></g></svg> {html_text(text)}</span>')
    return f'<div class="legend" role="list" aria-label="legend">{"".join(items)}</div>'
