"""The documentation site builds strictly, its API reference covers every
public name, and its generated pages (the `robult` options, the results
tables, the README's excerpt) match their sources."""

import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import zlib

import pytest

import keras_robult
from keras_robult.data.masking import subset_label

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBPACKAGES = (
    "backbones",
    "baselines",
    "calibration",
    "data",
    "datasets",
    "encoders",
    "experiments",
    "export",
    "layers",
    "losses",
    "models",
    "tasks",
)


def load_hooks():
    path = os.path.join(ROOT, "docs", "hooks", "generated_pages.py")
    spec = importlib.util.spec_from_file_location("generated_pages", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("mkdocs", reason="the docs extra: pip install .[docs]")
    built = os.environ.get("ROBULT_BUILT_SITE")
    if built and os.path.exists(os.path.join(built, "objects.inv")):
        return built  # scripts/test.sh's own strict build of this tree
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", out],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    return out


def inventory(site):
    """The object names of the site's `objects.inv` (Sphinx format: four
    header lines, then zlib-compressed `name domain:role priority uri
    display` lines)."""
    with open(os.path.join(site, "objects.inv"), "rb") as handle:
        header = [handle.readline() for _ in range(4)]
        assert header[0].startswith(b"# Sphinx inventory version 2")
        body = zlib.decompress(handle.read()).decode()
    return {line.split(" ")[0] for line in body.splitlines()}


def public_names():
    """`(module, name)` for every name of `keras_robult.__all__` and of
    each sub-package's `__all__`."""
    pairs = [("keras_robult", n) for n in keras_robult.__all__]
    for sub in SUBPACKAGES:
        module = importlib.import_module(f"keras_robult.{sub}")
        pairs += [(module.__name__, n) for n in module.__all__]
    return [(m, n) for m, n in pairs if not n.startswith("_")]


def test_every_public_name_is_in_the_api_reference(site):
    names = inventory(site)
    missing = []
    for module, name in public_names():
        obj = getattr(importlib.import_module(module), name)
        documented = {f"{module}.{name}"}
        if getattr(keras_robult, name, None) is obj:
            documented.add(f"keras_robult.{name}")  # e.g. models.Robult
        if not documented & names:
            missing.append(f"{module}.{name}")
    assert not missing, f"not in the API reference: {missing}"


def test_the_cli_page_lists_every_option(site):
    from keras_robult.cli.parser import robult_parser

    with open(os.path.join(site, "cli", "index.html"), encoding="utf-8") as f:
        page = f.read()
    parser = robult_parser()
    sub = next(
        a for a in parser._actions if hasattr(a, "choices") and a.choices
    )
    assert set(sub.choices) == {"train", "tune", "evaluate", "export"}
    for name, command in sub.choices.items():
        assert f"robult {name}" in page
        for action in command._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert flag in page, (name, flag)


def test_the_results_tables_are_those_of_their_results_json():
    hooks = load_hooks()
    # The file itself, read without the schema the pages are rendered by.
    path = os.path.join(ROOT, "docs", "results", "mfeat", "results.json")
    with open(path, encoding="utf-8") as handle:
        results = json.load(handle)
    section = hooks.results_section("mfeat")
    tables = {}  # (metric, subset) -> cells
    metric = None
    for line in section.splitlines():
        match = re.match(r"^(\w+) on mfeat", line)
        if match:
            metric = match.group(1)
        elif (
            line.startswith("| ") and metric and not line.startswith("| subset")
        ):
            cells = [c.strip() for c in line.strip("|").split("|")]
            tables[metric, cells[0]] = cells[1:]
    heading = next(
        line for line in section.splitlines() if line.startswith("| subset")
    )
    methods = [c.strip() for c in heading.strip("|").split("|")][1:]
    modalities = results["modalities"]
    checked = 0
    for entry in results["results"]:
        row = subset_label(entry["subset"], modalities)  # "all but mor"
        cell = tables[entry["metric"], row][methods.index(entry["method"])]
        mean, std = (float(v) for v in cell.split(" ± "))
        assert mean == pytest.approx(entry["mean"], abs=5e-4)
        assert std == pytest.approx(entry["std"], abs=5e-4)
        checked += 1
    assert checked == len(results["results"]) > 0
    summary = hooks.summary(hooks.load_run("mfeat")[0])
    for method, row in summary.items():
        singles = [
            e["mean"]
            for e in results["results"]
            if e["method"] == method
            and e["metric"] == "accuracy"
            and len(e["subset"]) == 1
        ]
        assert len(singles) == len(modalities)
        assert row["single"] == pytest.approx(sum(singles) / len(singles))
        cell = tables["accuracy", "single-modality mean"][methods.index(method)]
        assert float(cell) == pytest.approx(row["single"], abs=5e-4)


def test_the_readme_excerpt_is_the_rendered_summary():
    hooks = load_hooks()
    assert hooks.update_readme(os.path.join(ROOT, "README.md"), check=True), (
        "README.md's results excerpt is stale: run "
        "python docs/hooks/generated_pages.py --readme"
    )
    excerpt = hooks.readme_excerpt()
    assert excerpt.count("\n| ") == len(hooks.SUMMARY_METHODS)


def test_no_page_names_an_issue_or_a_commit():
    pages = [os.path.join(ROOT, "README.md")]
    for folder, _, files in os.walk(os.path.join(ROOT, "docs")):
        pages += [os.path.join(folder, f) for f in files if f.endswith(".md")]
    for path in pages:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        assert not re.search(r"\bissue #?\d+", text, re.I), path
        assert not re.search(r"`[0-9a-f]{7,40}`", text), path
        assert "DESIGN.md" not in text, path


def test_the_worked_example_prints_what_the_page_shows():
    """The missing-data page's example of which samples lose what is the
    output of its own code."""
    with open(os.path.join(ROOT, "docs", "missing-data.md")) as handle:
        page = handle.read()
    code = page.split("## Which samples lose what")[1]
    code = code.split("```python\n")[1].split("```")[0]
    shown = page.split("<!-- worked-example:start -->")[1]
    shown = shown.split("```text\n")[1].split("```")[0]
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout == shown
