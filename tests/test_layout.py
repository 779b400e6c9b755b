"""The project's shape: what gets installed, what each module says it owns, which way imports flow."""
import ast
from pathlib import Path

from setuptools.config.setupcfg import read_configuration

ROOT = Path(__file__).resolve().parent.parent
TOP_PACKAGES = ("parsers", "plugin")

# A module may import the layers to its right, never those to its left.
LAYERS = ("plugin.cli", "plugin.pipeline", "plugin.engine", "plugin.counter")


def package_dirs() -> set:
    return {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in TOP_PACKAGES
        for init in (ROOT / top).rglob("__init__.py")
    }


def modules():
    for top in TOP_PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            yield ".".join(path.relative_to(ROOT).with_suffix("").parts), ast.parse(path.read_text())


def imported(name: str, tree: ast.Module) -> set:
    """Absolute names of the modules ``name`` imports (relative imports resolved)."""
    package = name.split(".")[:-1] if not name.endswith("__init__") else name.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_every_package_on_disk_is_installed():
    """A subpackage missing from setup.cfg works in an editable checkout and breaks every install."""
    installed = set(read_configuration(str(ROOT / "setup.cfg"))["options"]["packages"])
    assert installed == package_dirs()


def test_every_module_opens_with_a_docstring_saying_what_it_owns():
    missing = [name for name, tree in modules() if not (ast.get_docstring(tree) or "").strip()]
    assert missing == []


def test_parsers_know_nothing_of_correlation():
    offenders = [name for name, tree in modules() if name.startswith("parsers")
                 and any(target.startswith("plugin") for target in imported(name, tree))]
    assert offenders == []


def test_imports_flow_from_the_cli_down_to_the_counter():
    offenders = []
    for name, tree in modules():
        if name not in LAYERS:
            continue
        above = LAYERS[: LAYERS.index(name)]
        offenders += [(name, target) for target in imported(name, tree) if target in above]
    assert offenders == []
