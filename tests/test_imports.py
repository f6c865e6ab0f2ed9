"""gandef_tf's modules import each other without a cycle, function-level imports included:
the library is mechanism only, and the commands in experiments/ sit on top of it."""

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = "gandef_tf"


def imported_modules(path, modules):
    """The gandef_tf modules that `path` imports anywhere in its text (module level, inside
    functions, `from gandef_tf import x` where x is a module)."""
    found = set()
    for node in ast.walk(ast.parse(Path(path).read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names]
            found |= {n[1] for n in names if n[0] == PACKAGE and len(n) > 1}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if parts[0] == PACKAGE and len(parts) > 1:
                found.add(parts[1])
            elif parts == [PACKAGE]:
                found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.level:  # relative: from . import x
            parts = (node.module or "").split(".")
            found |= {parts[0]} if parts[0] else {a.name for a in node.names if a.name in modules}
    return found


def import_graph(package_dir):
    modules = {p.stem for p in Path(package_dir).glob("*.py") if p.stem != "__init__"}
    return {m: sorted(imported_modules(Path(package_dir) / f"{m}.py", modules) - {m})
            for m in sorted(modules)}


def find_cycle(graph):
    """One cycle as [a, b, ..., a], or None (depth-first search, white/grey/black)."""
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in graph.get(m, ()):
            if state.get(n) == "open":
                return stack[stack.index(n):] + [n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = "done"
        return None

    for m in graph:
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_cycle_finder_finds_a_function_level_cycle(tmp_path):
    (tmp_path / "a.py").write_text("from gandef_tf import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from gandef_tf.c import g\n")
    (tmp_path / "c.py").write_text("import gandef_tf.a\n")
    (tmp_path / "d.py").write_text("from gandef_tf import a, c\n")
    graph = import_graph(tmp_path)
    assert graph == {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a", "c"]}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b"], "b": [], "d": ["a", "b"]}) is None


def test_gandef_tf_has_no_import_cycle():
    graph = import_graph(REPO / PACKAGE)
    assert {"evaluate", "training", "plan", "methods", "gandef"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle in {PACKAGE}: {' -> '.join(cycle)}"


def test_the_library_imports_no_command():
    """Policy lives in experiments/: no gandef_tf module imports from it."""
    for path in sorted((REPO / PACKAGE).glob("*.py")):
        tree = ast.parse(path.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        assert not [n for n in names if n.split(".")[0] == "experiments"], path.name


def test_figures_and_results_hold_no_code():
    """Runnable code lives in experiments/ (figures/gpu_proxy/'s bench included)."""
    code = [p for d in ("figures", "results") for p in (REPO / d).rglob("*.py")]
    assert not code, code
    assert (REPO / "experiments" / "proxy_bench.py").exists()
