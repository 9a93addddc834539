"""The package's folders are its architecture: stages of the data flow, imports only downward.

Levels (low to high): the top-level leaves (errors, atomic, jsonfile, paths, progress, stats) < data <
models < training < apply < study < cli. A module may import its own subpackage and any lower
level, never a higher one; imports inside functions count; no module imports another that
(directly or not) imports it back; no module is over 400 lines; each subpackage's __init__ says
what it is for and what it may import; the package map (docs/architecture.md) names every module.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "fer_utils"
LEVELS = {"": 0, "data": 1, "models": 2, "training": 3, "apply": 4, "study": 5, "cli": 6}
MAX_LINES = 400


def modules() -> dict[str, Path]:
    """``{"training.trainer": path, "errors": path, ...}`` (``__init__`` files as their package)."""
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        rel = p.relative_to(PKG).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


MODULES = modules()


def group(mod: str) -> str:
    """The stage a module belongs to: its subpackage, ``cli``, or ``""`` (a top-level leaf)."""
    head = mod.split(".")[0]
    if head == "cli":
        return "cli"
    return head if head in LEVELS and ("." in mod or mod in LEVELS) else ""


def imports(mod: str) -> set[str]:
    """The fer_utils modules ``mod`` imports (inside functions too), as keys of MODULES."""
    path = MODULES[mod]
    tree = ast.parse(path.read_text())
    pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".") if pkg else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                name = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").startswith("fer_utils"):
                name = node.module[len("fer_utils."):] if node.module != "fer_utils" else ""
            else:
                continue
            subs = [f"{name}.{a.name}" if name else a.name for a in node.names]
            # `from pkg import module` depends on the module; `from pkg import name` on pkg
            targets += [s for s in subs if s in MODULES] or [name]
        elif isinstance(node, ast.Import):
            targets += [a.name[len("fer_utils."):] for a in node.names if a.name.startswith("fer_utils.")]
        out.update(t for t in targets if t in MODULES and t != "")
    return out - {mod}


def test_every_subpackage_says_what_it_is_for_and_what_it_may_import():
    for sub in ("data", "models", "training", "apply", "study"):
        doc = ast.get_docstring(ast.parse((PKG / sub / "__init__.py").read_text())) or ""
        assert len(doc.splitlines()) >= 3 and "May import" in doc, sub


def test_imports_go_only_downward():
    wrong = []
    for mod in MODULES:
        if mod == "":
            continue
        for target in imports(mod):
            if group(target) == group(mod):
                continue
            if LEVELS[group(target)] > LEVELS[group(mod)]:
                wrong.append(f"{mod} -> {target}")
    assert wrong == []


def test_the_top_level_leaves_import_no_stage():
    for mod in MODULES:
        if mod and group(mod) == "":
            assert {group(t) for t in imports(mod)} <= {""}, mod


def test_no_import_cycle():
    graph = {m: imports(m) for m in MODULES if m}
    done, path = set(), []

    def visit(m):
        assert m not in path, " -> ".join(path[path.index(m):] + [m])
        if m in done:
            return
        path.append(m)
        for n in sorted(graph.get(m, ())):
            if n in graph:
                visit(n)
        path.pop()
        done.add(m)

    for m in graph:
        visit(m)


def test_no_module_over_400_lines():
    assert {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES} == {}


def test_the_package_map_names_every_module():
    page = (PKG.parent / "docs" / "architecture.md").read_text()
    section = page.split("## The package", 1)[1].split("\n## ", 1)[0]
    named = [m for m, p in MODULES.items() if m and p.name not in ("__init__.py", "__main__.py")]
    assert [m for m in named if f"`{m.rpartition('.')[2]}`" not in section and f"`fer_utils.{m}`" not in section] == []


def test_the_run_folder_files_are_named_in_rundir_only():
    """The run directory's file names live in training/rundir.py only (the trainer, the store and
    the CLI ask it)."""
    for mod in ("training.trainer", "training.store", "cli"):
        for path in [MODULES[m] for m in MODULES if m == mod or m.startswith(mod + ".")]:
            text = path.read_text()
            for name in ('"history.csv"', '"checkpoint.keras"', '"metrics.json"', 'model-e{'):
                assert name not in text, (path, name)


def test_no_library_module_imports_the_cli():
    assert [m for m in MODULES if m and group(m) != "cli" and any(group(t) == "cli" for t in imports(m))] == []


def test_the_run_layers_inside_training():
    """rundir (the files) <- trainer (trains through rundir) <- store; no circle."""
    assert not imports("training.rundir") & {"training.trainer", "training.store", "training.engine"}
    assert "training.store" not in imports("training.trainer") and "training.rundir" in imports("training.trainer")
    assert "training.trainer" in imports("training.store")
