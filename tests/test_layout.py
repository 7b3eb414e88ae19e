"""The import layout of the package: what the models and the backend interface may import.

The graph is read from the sources with :mod:`ast`, every ``import`` counted
wherever it stands (inside a function too: such an import runs when the
function does, and the cycle these tests guard against went through
function-level imports).  Importing ``lni_geometry.a.b`` runs the package
``lni_geometry.a`` first, so it counts as an import of both; the root package
``lni_geometry`` is left out, as every import of a submodule passes through
it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = "lni_geometry"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / ROOT

#: What the models must not reach: the samplers and the backends above them.
ABOVE_MODELS = ("lni_geometry.tails", "lni_geometry.sampling", "lni_geometry.backends")


def module_files(package_dir=PACKAGE_DIR):
    """Dotted module name -> source file, for every module of the package."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = (ROOT, *path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def direct_imports(name, path, modules):
    """The package's modules that module ``name`` (source ``path``) imports, with their parent packages."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = ".".join(base[:len(base) - (node.level - 1)])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module
            # ``from a import b`` imports a, and a.b where b is a module
            targets = [target] + [f"{target}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target in modules or target.startswith(ROOT + "."):
                if target in modules:
                    found.add(target)
                target = target.rpartition(".")[0]
    found.discard(ROOT)
    found.discard(name)
    return found


def import_graph(package_dir=PACKAGE_DIR):
    """Module -> the set of the package's modules it imports directly."""
    modules = module_files(package_dir)
    return {name: direct_imports(name, path, modules) for name, path in modules.items()}


def reachable(graph, start):
    """Every module that importing ``start`` may import, directly or transitively."""
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _within(name, package):
    return name == package or name.startswith(package + ".")


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_the_graph_reads_the_package(graph):
    """The walker sees the edges it should (guards the tests below against an empty graph)."""
    assert "lni_geometry.kernels" in graph["lni_geometry.backends.cpu"]
    assert "lni_geometry.backends" in graph["lni_geometry.backends.cpu"]  # ``from . import ...``
    assert "lni_geometry.models" in graph["lni_geometry.kernels"]
    assert "lni_geometry.models" in graph["lni_geometry.tails"]  # a function-level import


def test_models_import_nothing_above_them(graph):
    """No cycle ``models -> tails -> sampling -> backends -> kernels -> models``: the
    models (every module of the package) reach neither the samplers nor the backends."""
    models = [name for name in graph if _within(name, "lni_geometry.models")]
    assert models
    for name in models:
        above = sorted(m for m in reachable(graph, name) if any(_within(m, a) for a in ABOVE_MODELS))
        assert not above, f"{name} imports {above}"


def test_no_cycle_through_the_models(graph):
    """What the models import never imports the models back."""
    below = [m for m in reachable(graph, "lni_geometry.models") if not _within(m, "lni_geometry.models")]
    for name in below:
        back = sorted(m for m in reachable(graph, name) if _within(m, "lni_geometry.models"))
        assert not back, f"{name} imports {back}"
    assert "lni_geometry.stable_law" in below  # the tail law of the range bounds


def test_backend_interface_imports_no_implementation(graph):
    """``lni_geometry.backends`` (the interface) names no backend module in its imports;
    :func:`lni_geometry.backends.get_backend` and ``options_type`` load them by name."""
    implementations = sorted(m for m in graph["lni_geometry.backends"] if m.startswith("lni_geometry.backends."))
    assert not implementations


def test_dask_options_resolved_on_first_use():
    """Importing the package leaves the Dask backend unloaded; ``DaskOptions`` still comes
    from ``lni_geometry.backends``, the Dask backend's own class."""
    code = (
        "import sys, lni_geometry, lni_geometry.backends as b\n"
        "assert 'lni_geometry.backends.dask_backend' not in sys.modules\n"
        "assert 'DaskOptions' in dir(b)\n"
        "from lni_geometry.backends import DaskOptions\n"
        "from lni_geometry.backends import dask_backend\n"
        "assert DaskOptions is dask_backend.DaskOptions is dask_backend.Options is b.options_type('dask')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE_DIR.parent, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
