"""The repository's layout: every app has the skeleton's files, no module imports another in a circle, and no
tracked file names a folder of one machine.

The skeleton (README.md, "Layout"): each app package, and each family of vision, has README.md, config.py,
data.py, models.py, plots.py and tasks/ (one module per task).
"""

import ast
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

SKELETON = ("README.md", "config.py", "data.py", "models.py", "plots.py", "tasks/__init__.py")
APP_PACKAGES = ("fraud", "gaming_rl", "nlp", "recommender", "speech", "vision/classification", "vision/generative",
                "vision/photos")
PACKAGES = ("apps", "shared", "pipelines")


@pytest.mark.parametrize("package", APP_PACKAGES)
def test_every_app_package_has_the_skeleton(package):
    folder = REPO / "apps" / package
    missing = [name for name in SKELETON if not (folder / name).is_file()]
    assert not missing, f"apps/{package} lacks {missing}"
    tasks = [path.stem for path in (folder / "tasks").glob("*.py") if path.stem not in ("__init__", "base")]
    assert tasks, f"apps/{package}/tasks holds no task module"


def test_the_app_table_names_every_app_package():
    from pipelines.catalog import APPS

    assert sorted(APPS) == sorted({package.split("/")[0] for package in APP_PACKAGES})


def module_name(path):
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path, modules):
    """The project modules `path` imports, at any depth of the file (lazy imports count too)."""
    found = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module_name(path):
                found.add(name)
    return found


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, result, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return result


def test_no_module_imports_another_in_a_circle():
    paths = [path for package in PACKAGES for path in (REPO / package).rglob("*.py")]
    modules = {module_name(path): path for path in paths}
    graph = {name: imports_of(path, modules) - {name} for name, path in modules.items()}
    # A package's __init__ importing its own modules is not a circle of modules.
    graph = {name: {other for other in targets if not name.startswith(other + ".")} for name, targets in graph.items()}
    assert cycles(graph) == []


def test_no_tracked_file_names_a_folder_of_one_machine():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    machine_path = re.compile(r"(?<![\w.])/(?:work|home/\w+|root|Users/\w+)/")
    offenders = []
    for name in tracked:
        path = REPO / name
        if name == "tests/test_layout.py" or path.suffix not in (".py", ".md", ".toml", ".yaml", ".yml", ".txt", "") \
                or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if machine_path.search(line):
                offenders.append(f"{name}:{number}: {line.strip()[:100]}")
    assert offenders == []


def test_no_store_or_run_output_is_tracked():
    """A store written by a stray MLflow call (MLflow's default is ./mlflow.db) or run output must not be committed."""
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    assert [path for path in tracked if path.endswith((".db", ".sqlite")) or path.startswith(("exports/", "mlruns/artifacts/"))] == []
