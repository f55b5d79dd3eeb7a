"""The library stands without its command line: every module outside
`keras_robult.cli` imports with the start-up module unavailable, and none
of them parses a command line."""

import ast
import os
import subprocess
import sys

from tests.conftest import once

PACKAGE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "keras_robult"
)


def library_modules():
    """Module names of the package outside `cli/`."""
    names = []
    for root, folders, files in os.walk(PACKAGE):
        folders[:] = [f for f in folders if f not in ("cli", "__pycache__")]
        for file in files:
            if not file.endswith(".py") or file == "__main__.py":
                continue
            relative = os.path.relpath(os.path.join(root, file), PACKAGE)
            parts = ["keras_robult", *relative[:-3].split(os.sep)]
            if parts[-1] == "__init__":
                parts.pop()
            names.append(".".join(parts))
    return sorted(names)


@once
def test_every_library_module_imports_without_the_command_line():
    modules = library_modules()
    assert "keras_robult.experiments.image_text" in modules
    code = (
        "import importlib, sys\n"
        "sys.modules['keras_robult_cli'] = None\n"  # import -> ImportError
        "sys.modules['keras_robult.cli'] = None\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print('imported', len(sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_no_library_module_parses_a_command_line():
    for name in library_modules():
        path = os.path.join(PACKAGE, *name.split(".")[1:])
        path = path + ".py" if os.path.isfile(path + ".py") else path
        if os.path.isdir(path):
            path = os.path.join(path, "__init__.py")
        with open(path) as handle:
            tree = ast.parse(handle.read())
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in (
                node.names
                if isinstance(node, ast.Import)
                else [ast.alias(node.module or "")]
            )
        }
        assert "argparse" not in imported, name
