"""The import structure of the package: layers that only import downwards, no circles between modules, argparse
only in the CLI. Every import counts, including the lazy ones inside functions."""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "asrdistill"

#: Lowest first. A module may import its own layer's modules and those of lower layers, never higher ones.
LAYERS: list[set[str]] = [
    {"", "errors", "utils"},
    {"textio", "kaldi_tables", "parallel", "cluster", "experiment"},
    {"lang"},           # phone sets, lexicons / dict dirs, lang dirs
    {"data"},           # Kaldi data dirs, corpora (the synthetic one uses lang's phone tables)
    {"features"},
    {"hmm"},
    {"tree"},
    {"align"},
    {"nnet"},
    {"distill"},
    {"lm"},
    {"decode"},
    {"export"},
    {"report"},
    {"sizes"},
    {"commands", "cli"},
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        out[".".join(["asrdistill", *parts])] = path
    return out


def _imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("asrdistill"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.startswith("asrdistill"):
                found.add(name)
                for a in node.names:  # `from asrdistill.x import y` where y is a module
                    found.add(f"{name}.{a.name}")
    return found


def _layer(module: str) -> int:
    top = module.split(".")[1] if module.count(".") else ""
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"{module}: its package {top!r} has no layer in tests/test_structure.py")


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        deps = {d for d in _imports(path, name) if d in mods and d != name}
        graph[name] = deps
    return graph


def test_every_import_goes_down_the_layers():
    bad = []
    for mod, deps in _graph().items():
        for dep in deps:
            if _layer(dep) > _layer(mod):
                bad.append(f"{mod} imports {dep} (layer {_layer(mod)} -> {_layer(dep)})")
    assert not bad, "imports that run back up a layer:\n" + "\n".join(sorted(bad))


def test_no_import_circles_between_modules():
    graph = _graph()
    # a package's __init__ re-exporting its own modules is not a circle of the code
    for name in graph:
        graph[name] = {d for d in graph[name] if not (name.startswith(d + ".") and d in graph)}
    seen, stack, cycles = set(), [], []

    def visit(node: str) -> None:
        if node in stack:
            cycles.append(stack[stack.index(node):] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            visit(dep)
        stack.pop()

    for node in sorted(graph):
        visit(node)
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_argparse_only_in_the_cli():
    users = [name for name, path in _modules().items() if "argparse" in path.read_text()
             and not (name.startswith("asrdistill.commands") or name == "asrdistill.cli")]
    assert not users, f"argparse outside asrdistill/commands: {users}"


def test_test_fixtures_live_under_tests():
    assert not list(PKG.rglob("toy*.py")) and not list(PKG.rglob("testsignal.py"))


def test_the_command_line_starts_without_torch():
    """Building the parser (``--help``, and every command before its handler runs) imports no torch: the recipe
    calls small commands (``manifest get``, ``layout``) dozens of times, and torch's import costs seconds each."""
    import subprocess
    import sys

    code = ("import sys; from asrdistill.cli import build_parser; build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'matplotlib', 'scipy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
