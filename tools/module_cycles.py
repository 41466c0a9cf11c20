#!/usr/bin/env python3
"""Finds circles among the top-level modules of each crate, from their `crate::` paths.

A module `a` depends on `b` when code in `a` (its file, or its folder for `a/mod.rs`) names
`crate::b` outside comments and test modules; a name re-exported at the crate root
(`crate::ReportInputs`) counts as its defining module, read from the root's `pub use` lines.
Prints each circle and exits 1 if any; CI runs it (`python3 tools/module_cycles.py crates/*`).
"""

import re
import sys
from pathlib import Path

PATH = re.compile(r"crate::(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)")
PUB_USE = re.compile(r"pub use ([a-z_][a-z0-9_]*)::(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)", re.S)


def code_of(path: Path) -> str:
    """The file without its test module and without comments."""
    text = path.read_text()
    text = text.split("#[cfg(test)]")[0]
    return "\n".join(line.split("//")[0] for line in text.splitlines())


def names(group: str) -> list[str]:
    """`{a, b::c, D}` or `a`: the first segment of each path."""
    inner = group.strip("{}")
    return [part.strip().split("::")[0] for part in inner.split(",") if part.strip()]


def module_graph(src: Path) -> dict[str, set[str]]:
    root = src / "lib.rs" if (src / "lib.rs").exists() else src / "main.rs"
    reexported = {}
    if root.exists():
        for module, group in PUB_USE.findall(code_of(root)):
            for name in names(group):
                reexported[name] = module
    modules = {}
    for path in src.rglob("*.rs"):
        rel = path.relative_to(src)
        if rel.parts[0] in ("lib.rs", "main.rs", "bin"):
            continue
        top = rel.parts[0].removesuffix(".rs")
        modules.setdefault(top, set())
        for group in PATH.findall(code_of(path)):
            for name in names(group):
                target = reexported.get(name, name)
                if target != top and target != "self" and target != "super":
                    modules[top].add(target)
    return {m: {d for d in deps if d in modules} for m, deps in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle per strongly connected component of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main(crates: list[str]) -> int:
    bad = 0
    for crate in crates:
        src = Path(crate) / "src"
        if not src.is_dir():
            continue
        graph = module_graph(src)
        for component in circles(graph):
            bad += 1
            print(f"{crate}: modules in a circle: {', '.join(component)}")
    if bad == 0:
        print(f"no module circle in {len(crates)} crates")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
