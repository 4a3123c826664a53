"""The import graph of mlpnumpy's own modules, read from the source with ``ast``: every import, at a
module's top or inside a function, resolved to the absolute name of the mlpnumpy module it loads."""
import ast
from functools import lru_cache
from pathlib import Path

import mlpnumpy

ROOT = Path(mlpnumpy.__file__).parent


@lru_cache(maxsize=None)
def modules() -> dict:
    """``{'mlpnumpy.nn.layers': (path, package parts)}`` for every module and package of mlpnumpy."""
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = list(p.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
            pkg = parts
        else:
            pkg = parts[:-1]
        out[".".join(parts)] = (p, tuple(pkg))
    return out


@lru_cache(maxsize=None)
def imports_of(name: str) -> frozenset:
    """The mlpnumpy modules ``name`` imports (``from .x import y`` counts ``x.y`` when that is a module)."""
    mods = modules()
    path, pkg = mods[name]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(pkg[: len(pkg) - (node.level - 1)])
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "mlpnumpy":
                target = node.module
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in mods else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "mlpnumpy")
    return frozenset(m for m in found if m in mods and m != name)


def cycles(skip_packages: bool = True) -> list:
    """Strongly connected groups of more than one module (Tarjan). With ``skip_packages``, an import of a
    package's ``__init__`` is not followed (a package imports its own children to re-export them)."""
    mods = modules()
    graph = {m: [w for w in imports_of(m) if not (skip_packages and mods[w][0].name == "__init__.py")]
             for m in mods}
    index, low, stack, on, groups = {}, {}, [], set(), []

    def visit(n):
        index[n] = low[n] = len(index)
        stack.append(n)
        on.add(n)
        for w in graph[n]:
            if w not in index:
                visit(w)
                low[n] = min(low[n], low[w])
            elif w in on:
                low[n] = min(low[n], index[w])
        if low[n] == index[n]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == n:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for n in sorted(graph):
        if n not in index:
            visit(n)
    return groups
