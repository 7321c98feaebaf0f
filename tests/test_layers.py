"""The package's layers (DESIGN: each layer imports only layers below it) and no import cycle anywhere.

Every ``import`` and ``from ... import`` is read from the source (module level and inside functions alike),
resolved to a module of the package, and checked: the rank of the importer is at least the rank of what it
imports, and the module graph has no cycle. No module passes 900 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "greeksmargin"

# lowest first; a module takes the rank of its longest matching prefix
RANKS = {
    "greeksmargin.units": 0,
    "greeksmargin._version": 0,
    "greeksmargin.errors": 0,
    "greeksmargin.io": 1,
    "greeksmargin.pricing": 2,
    "greeksmargin.book": 3,
    "greeksmargin.datasets": 4,
    "greeksmargin.adapters": 4,
    "greeksmargin.risk": 5,
    "greeksmargin.methodologies": 6,
    "greeksmargin.engine": 7,
    "greeksmargin.solvency": 8,
    "greeksmargin.calibration": 9,
    "greeksmargin.validation": 9,
    "greeksmargin.reports": 10,
    "greeksmargin.cli": 11,
    "greeksmargin.datasets.make_example_book": 11,
    "greeksmargin": 12,
}


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(mod: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("greeksmargin"):
                continue
            for alias in node.names:
                full = f"{target}.{alias.name}"
                found.add(full if full in MODULES else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("greeksmargin"))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and str(first.value).startswith("greeksmargin"):
                found.add(str(first.value))
    resolved = {_resolve(f) for f in found}
    return {r for r in resolved if r and r != mod}


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _rank(mod: str) -> int:
    best = max((k for k in RANKS if mod == k or mod.startswith(k + ".")), key=len)
    return RANKS[best]


def _is_package_init(mod: str) -> bool:
    return MODULES[mod].name == "__init__.py"


def test_every_import_goes_down_the_layers() -> None:
    bad = []
    for mod, targets in GRAPH.items():
        for t in targets:
            # a package's __init__ may re-export its own modules
            if _is_package_init(mod) and t.startswith(mod + "."):
                continue
            if _rank(t) > _rank(mod):
                bad.append(f"{mod} (layer {_rank(mod)}) imports {t} (layer {_rank(t)})")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_cycle() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in GRAPH.get(v, ()):
            if _is_package_init(w) and v.startswith(w + "."):
                continue  # a submodule's import of its package's __init__ is resolved by Python first
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
                cycles.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_module_over_900_lines() -> None:
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > 900}
    assert not long, long


def test_the_graph_is_read() -> None:
    # the checker itself must see imports (guards against a walker that finds nothing)
    assert "greeksmargin.errors" in GRAPH["greeksmargin.io"]
    assert any(t.startswith("greeksmargin.pricing") for t in GRAPH["greeksmargin.risk.greeks"])


# ---------------------------------------------------------------------------------- rule code reads no file
#: calls that read (or look for) a file: a bare name, or the attribute of any object (``path.read_text()``)
_FILE_CALLS = {"open", "read_text", "read_bytes", "exists", "is_file", "is_dir", "iterdir", "glob", "rglob",
               "shipped_folder", "find_model_file", "read_toml", "read_json", "read_table", "loadtxt", "genfromtxt",
               "fromfile"}
#: modules whose loaders read files: ``tomllib.load(s)``, ``json.load``, ``pickle.load``, ``np.load``
_FILE_MODULES = {"tomllib", "json", "pickle", "np", "numpy", "csv"}
_FILE_IMPORTS = {"tomllib", "pickle", "csv", "greeksmargin.io", "pathlib", "os", "shutil", "glob"}


def _file_reads(source: str) -> list[str]:
    """What a module's source does that reads files: imports of file modules and calls that open or find one."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in _FILE_IMPORTS
                      or a.name == "greeksmargin.io"]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            mod = node.module or ""
            if mod.split(".")[0] in _FILE_IMPORTS or mod == "greeksmargin.io" or (
                    mod == "greeksmargin" and any(a.name == "io" for a in node.names)):
                found.append(f"from {mod} import {', '.join(a.name for a in node.names)}")
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            if name in _FILE_CALLS:
                found.append(f"line {node.lineno}: {name}()")
            elif owner in _FILE_MODULES and name in ("load", "loads", "reader", "DictReader"):
                found.append(f"line {node.lineno}: {owner}.{name}()")
            elif owner in ("pd", "pandas") and name.startswith("read_"):
                found.append(f"line {node.lineno}: {owner}.{name}()")
    return found


def test_methodologies_read_no_file() -> None:
    # rule code receives parameters; the readers of model files are in greeksmargin.engine.params_files
    bad = {m: hits for m, p in MODULES.items()
           if (m == "greeksmargin.methodologies" or m.startswith("greeksmargin.methodologies."))
           and (hits := _file_reads(p.read_text()))}
    assert not bad, bad


def test_the_file_read_check_sees_reads() -> None:
    # the checker must flag each form (guards against a walker that finds nothing)
    for snippet in ("from greeksmargin import io", "import greeksmargin.io", "from greeksmargin.io import read_toml",
                    "import tomllib", "from pathlib import Path", "x = tomllib.loads(s)", "d = json.load(f)",
                    "t = Path(p).read_text()", "b = p.read_bytes()", "f = open(p)", "df = pd.read_csv(p)",
                    "ok = p.exists()", "folder = io.shipped_folder('models')"):
        assert _file_reads(snippet), snippet
    assert not _file_reads("import json\ns = json.dumps(d)\nx = np.sqrt(2.0)\nd = dict(a=1).get('a')")
