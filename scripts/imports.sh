#!/usr/bin/env bash
# The import check: builds the module dependency graph of src/ from every `crate::…` path in
# src/**/*.rs (`use crate::x::…`, `use crate::{x, y::z}`, `crate::x::f()` in code) and fails, printing
# the circle and the lines that make it, when the graph has one.
#
# Nodes are top-level modules (dsn, grammar, net, session, settings, …) and, below store, each engine
# or file (store::redis, store::sqlite, store::engine, store::tests, …); a file belongs to the node of
# its directory (store/redis/dsn.rs is store::redis, php/hooks.rs is php). Only `crate::` paths are
# edges: relative paths (`super::`, a child module's name) join a parent and its own children, which
# are one unit (store/mod.rs declares the engines and they implement its trait). Comments are skipped.
#
# Usage: scripts/imports.sh [SRC_DIR]   (default: src/ of this checkout). Exit 1 on a circle.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "${1:-src}" <<'PY'
import os, re, sys

src = sys.argv[1].rstrip('/')
files = []
for root, _, names in os.walk(src):
    files += [os.path.join(root, n) for n in names if n.endswith('.rs')]
if not files:
    sys.exit(f"imports.sh: no .rs files under {src}")

# The children of store (store/<x>.rs or store/<x>/), so store::x can be told from store::Item.
store_dir = os.path.join(src, 'store')
store_children = set()
if os.path.isdir(store_dir):
    for n in os.listdir(store_dir):
        if n.endswith('.rs') and n != 'mod.rs':
            store_children.add(n[:-3])
        elif os.path.isdir(os.path.join(store_dir, n)):
            store_children.add(n)

# The top-level modules (src/<x>.rs or src/<x>/): crate::VERSION and the like are items of the root.
top_modules = {n[:-3] if n.endswith('.rs') else n for n in os.listdir(src)
               if (n.endswith('.rs') and n != 'lib.rs') or os.path.isdir(os.path.join(src, n))}

def node(parts):
    """The node of a module path (without `crate`), or None for the crate root and its items."""
    if not parts or parts[0] not in top_modules:
        return None
    if parts[0] == 'store' and len(parts) > 1 and parts[1] in store_children:
        return 'store::' + parts[1]
    return parts[0]

def file_node(path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ('mod', 'lib'):
        rel = rel[:-1]
    return node(rel)

IDENT = r'[A-Za-z_][A-Za-z0-9_]*'
PATH = re.compile(r'\bcrate((?:::' + IDENT + r')*)(::\{)?')

def group_items(text, start):
    """The first path of each item of the `{…}` group that opens at text[start-1]."""
    depth, item, items, i = 1, '', [], start
    while i < len(text) and depth:
        c = text[i]
        if c == '{':
            depth += 1
        elif c == '}':
            depth -= 1
        if depth == 1 and c == ',':
            items.append(item); item = ''
        elif depth >= 1 and not (depth == 1 and c == '}'):
            item += c
        i += 1
    items.append(item)
    out = []
    for it in items:
        m = re.match(r'\s*(' + IDENT + r'(?:::' + IDENT + r')*)', it)
        if m and m.group(1) != 'self':
            out.append(m.group(1).split('::'))
    return out

edges = {}  # (from, to) -> first "file:line" seen
for f in sorted(files):
    me = file_node(f)
    if me is None:
        continue
    with open(f, encoding='utf-8') as fh:
        lines = fh.read().split('\n')
    # Line comments (also doc comments) are not code; '//' inside "scheme://" is not a comment start.
    code = [re.sub(r'(^|\s)//.*$', '', l) for l in lines]
    text = '\n'.join(code)
    for m in PATH.finditer(text):
        base = [p for p in m.group(1).split('::') if p]
        targets = [base + item for item in group_items(text, m.end())] if m.group(2) else [base]
        line = text.count('\n', 0, m.start()) + 1
        for t in targets:
            to = node(t)
            if to is not None and to != me:
                edges.setdefault((me, to), f"{f}:{line}")

graph = {}
for (a, b) in edges:
    graph.setdefault(a, set()).add(b)
    graph.setdefault(b, set())

# Depth-first search; a grey node met again closes a circle.
WHITE, GREY, BLACK = 0, 1, 2
color = {n: WHITE for n in graph}
stack = []

def visit(n):
    color[n] = GREY
    stack.append(n)
    for m in sorted(graph[n]):
        if color[m] == GREY:
            return stack[stack.index(m):] + [m]
        if color[m] == WHITE:
            c = visit(m)
            if c:
                return c
    stack.pop()
    color[n] = BLACK
    return None

for n in sorted(graph):
    if color[n] == WHITE:
        cycle = visit(n)
        if cycle:
            print("import circle: " + " -> ".join(cycle))
            for a, b in zip(cycle, cycle[1:]):
                print(f"  {a} -> {b}  ({edges[(a, b)]})")
            sys.exit(1)

print(f"imports: no circle ({len(graph)} modules, {len(edges)} edges)")
for a in sorted(graph):
    if graph[a]:
        print(f"  {a} -> {', '.join(sorted(graph[a]))}")
PY
