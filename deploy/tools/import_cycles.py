#!/usr/bin/env python3
"""Finds the circles of imports between the source files of a crate: which files reach each
other through `use crate::...`, `crate::` paths and `super::` paths. Test files (tests.rs and
what is under tests/) are left out. Prints each circle (a strongly connected component of more
than one file) with its size, largest first, and a summary line.

  deploy/tools/import_cycles.py node/src [raft-store/src ...]
"""

import re
import sys
from pathlib import Path


def module_of(src: Path, file: Path) -> tuple:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def expand(tree: str, prefix: tuple) -> list:
    """Paths named by a use tree such as `a::{b, c::{d, e}}`, each as a tuple of segments."""
    tree = tree.strip()
    if not tree:
        return []
    depth, cut = 0, None
    for i, ch in enumerate(tree):
        if ch == "{":
            if depth == 0 and cut is None:
                cut = i
            depth += 1
        elif ch == "}":
            depth -= 1
    if cut is None:
        segs = [s.strip() for s in tree.split(" as ")[0].split("::") if s.strip()]
        return [prefix + tuple(segs)]
    head = [s for s in tree[:cut].split("::") if s.strip()]
    inner = tree[cut + 1 : tree.rindex("}")]
    items, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(inner[start:i])
            start = i + 1
    items.append(inner[start:])
    out = []
    for item in items:
        out.extend(expand(item, prefix + tuple(s.strip() for s in head)))
    return out


def resolve(path: tuple, modules: set, here: tuple):
    """The deepest known module a path (already absolute) names, other than `here`."""
    for n in range(len(path), 0, -1):
        if path[:n] in modules:
            return path[:n] if path[:n] != here else None
    return None


def graph(src: Path):
    files = [
        f
        for f in src.rglob("*.rs")
        if f.name != "tests.rs" and "tests" not in f.relative_to(src).parts[:-1]
    ]
    modules = {module_of(src, f): f for f in files}
    edges = {m: set() for m in modules}
    for m, f in modules.items():
        text = re.sub(r"//[^\n]*", "", f.read_text())
        # Leave out #[cfg(test)] modules written inline.
        text = re.split(r"#\[cfg\(test\)\]\s*mod tests\s*\{", text)[0]
        paths = []
        for stmt in re.findall(r"\buse\s+([^;]+);", text):
            stmt = stmt.strip()
            if stmt.startswith("crate::"):
                paths += expand(stmt[len("crate::"):], ())
            elif stmt.startswith("super::"):
                base = m[:-1]
                rest = stmt
                while rest.startswith("super::"):
                    rest = rest[len("super::"):]
                    base = base[:-1] if rest.startswith("super::") else base
                paths += expand(rest, base)
            elif stmt.startswith("self::"):
                paths += expand(stmt[len("self::"):], m)
        for inline in re.findall(r"\bcrate((?:::\w+)+)", text):
            paths.append(tuple(s for s in inline.split("::") if s))
        for inline in re.findall(r"\bsuper((?:::\w+)+)", text):
            paths.append(m[:-1] + tuple(s for s in inline.split("::") if s))
        for p in paths:
            target = resolve(p, modules.keys(), m)
            if target is not None:
                edges[m].add(target)
    # A parent module declaring its children (`mod x;`) is not an import.
    return modules, edges


def circles(edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return sorted(out, key=len, reverse=True)


def main():
    for arg in sys.argv[1:]:
        src = Path(arg)
        modules, edges = graph(src)
        found = circles(edges)
        for comp in found:
            names = sorted("::".join(m) or "lib" for m in comp)
            print(f"{src}: circle of {len(comp)} files: {', '.join(names)}")
        longest = max((len(c) for c in found), default=0)
        print(f"{src}: {len(modules)} files, {len(found)} circles, largest {longest} files")


if __name__ == "__main__":
    main()
