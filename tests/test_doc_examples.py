"""Every code block of the documentation site runs (or parses) as written.

Each page's Python blocks run in order in one fresh process under this
backend, in an empty folder (a later block may continue an earlier one of
its page, as the page says). Shell blocks cannot train for minutes in a
test: each `robult` command in them parses with the command's parser,
each recipe exists and knows every option a block gives it, and each
`pip install` names extras the package has.
"""

import os
import re
import shlex

import keras
import pytest

from tests.cli.test_recipe import recipe
from tests.conftest import once
from tests.test_readme import run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
#: The backend each page's Python examples run under: torch (the
#: cheapest, as for the other backend-independent tests: the examples are
#: the documentation's, the unit tests hold every backend to the same
#: behaviour), unless the page needs a backend feature (it says why).
RUN_UNDER = {"scaling.md": "jax"}


def pages():
    return sorted(
        name
        for name in os.listdir(DOCS)
        if name.endswith(".md") and blocks(name, "python")
    )


def blocks(page, language):
    with open(os.path.join(DOCS, page), encoding="utf-8") as handle:
        text = handle.read()
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.S | re.M)


@pytest.mark.parametrize("page", pages())
def test_the_python_examples_of_a_page_run_as_written(page, tmp_path):
    backend = RUN_UNDER.get(page, "torch")
    if keras.backend.backend() != backend:
        pytest.skip(f"{page}'s examples run under {backend}")
    result = run("\n\n".join(blocks(page, "python")), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]


def shell_commands():
    """`(page, words)` of every command line of the site's bash blocks
    (continuation lines joined, comments and environment settings
    dropped)."""
    commands = []
    for page in sorted(os.listdir(DOCS)):
        if not page.endswith(".md"):
            continue
        for block in blocks(page, "bash"):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                while words and re.match(r"^[A-Z_]+=", words[0]):
                    words = words[1:]
                for part in " ".join(words).split(" && "):
                    if part.strip():
                        commands.append((page, shlex.split(part)))
    return commands


@once
def test_the_shell_examples_name_what_exists(capsys):
    from keras_robult.cli.parser import robult_parser

    tomllib = pytest.importorskip("tomllib")  # Python 3.11
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        extras = set(tomllib.load(handle)["project"]["optional-dependencies"])
    recipe_help = {}
    checked = 0
    for page, words in shell_commands():
        program = os.path.basename(words[0])
        arguments = [w for w in words[1:] if w != "..."]
        if program == "robult":
            try:
                robult_parser().parse_args(arguments)
            except SystemExit as error:
                pytest.fail(f"{page}: {' '.join(words)}: exit {error.code}")
            checked += 1
        elif program.startswith("python") and arguments[0].startswith(
            "recipes/"
        ):
            script = arguments[0]
            assert os.path.exists(os.path.join(ROOT, script)), (page, script)
            if script not in recipe_help:  # in this process: no imports
                name = os.path.splitext(os.path.basename(script))[0]
                capsys.readouterr()
                with pytest.raises(SystemExit):
                    recipe(name)["run"](["--help"])
                recipe_help[script] = capsys.readouterr().out
            for option in (w for w in arguments if w.startswith("--")):
                assert option in recipe_help[script], (page, script, option)
            checked += 1
        elif program == "pip" and "install" in arguments:
            for word in arguments:
                named = re.match(r"^\.?\[(.*)\]$", word.strip('"'))
                if named:
                    assert set(named.group(1).split(",")) <= extras, word
    capsys.readouterr()
    assert checked >= 20
