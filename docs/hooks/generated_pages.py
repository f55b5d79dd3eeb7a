"""Generated parts of the documentation, filled in at build time.

MkDocs calls `on_page_markdown` for every page; a page asks for generated
text with a marker line:

- `<!-- generated: cli -->`: the `robult` command and the recipes' common
  options, from their argparse parsers (so the page cannot drift);
- `<!-- generated: results NAME -->`: the tables of the run whose
  `results.json` and `about.json` lie in `docs/results/NAME/`;
- `<!-- generated: summary NAME -->`: the compact table of that run;
- `<!-- generated: methods -->`: every method `--methods` takes, from
  the registry (`keras_robult.experiments.registry.METHODS`).

The README's results excerpt, between `<!-- results-excerpt:start -->` and
`<!-- results-excerpt:end -->`, is the same compact table:

    python docs/hooks/generated_pages.py --readme   # rewrite it
    python docs/hooks/generated_pages.py --check    # fail if it is stale
"""

import argparse
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
RESULTS_DIR = os.path.join(ROOT, "docs", "results")
MARKER = re.compile(r"<!-- generated: (\w+)(?: ([\w-]+))? -->")
EXCERPT = re.compile(
    r"(<!-- results-excerpt:start -->\n)(.*?)(<!-- results-excerpt:end -->)",
    re.S,
)
#: The methods of the README's excerpt: Robult, the paper's baselines and
#: the simple references.
SUMMARY_METHODS = (
    "robult",
    "robult-paper",
    "gmc",
    "actionmae",
    "unimodal",
    "prompt-trans",
    "linear",
    "mlp",
)


def load_run(name):
    """`(results, about)` of the run kept in `docs/results/<name>/`: its
    `Results` and the dict of its `about.json`."""
    from keras_robult.experiments import Results

    folder = os.path.join(RESULTS_DIR, name)
    results = Results.load(os.path.join(folder, "results.json"))
    with open(os.path.join(folder, "about.json"), encoding="utf-8") as f:
        about = json.load(f)
    return results, about


def primary_metric(results):
    """The metric of the run's tables: the first of its entries."""
    return results.results[0].metric


def summary(results, methods=None, metric=None):
    """Per method: the single-modality mean, the full set and the
    missing-rate AUC of `metric`, from the entries of `results`."""
    metric = metric or primary_metric(results)
    cells = results.summaries(metric)
    curves = results.curves(metric)
    rows = {}
    for method in methods or results.methods():
        entries = [e for (m, _), e in cells.items() if m == method]
        if not entries:
            continue
        singles = [e.mean for e in entries if len(e.subset) == 1]
        full = cells.get((method, "all"))
        rows[method] = {
            "single": sum(singles) / len(singles) if singles else None,
            "all": full.mean if full else None,
            "auc": curves[method].auc if method in curves else None,
        }
    return rows


def _cell(value):
    return "–" if value is None else f"{value:.3f}"


def summary_table(results, methods=SUMMARY_METHODS):
    """The compact markdown table of `summary`."""
    metric = primary_metric(results)
    lines = [
        "| method | single-modality mean | all modalities | missing-rate AUC |",
        "|---|---|---|---|",
    ]
    for method, row in summary(results, methods, metric).items():
        lines.append(
            f"| {method} | {_cell(row['single'])} | {_cell(row['all'])} | "
            f"{_cell(row['auc'])} |"
        )
    return "\n".join(lines) + "\n"


def provenance(name, about, results):
    """One paragraph: what was run, where, when."""
    seeds = ", ".join(map(str, results.seeds))
    return (
        f"Produced by `{about['command']}`, {about['description']} "
        f"Seeds {seeds}; "
        f"{about['backend']}; {about['machine']}; about "
        f"{about['wall_time_minutes']} minutes; {about['date']}. The "
        f"numbers come from [`results.json`](results/"
        f"{name}/results.json)."
    )


def results_section(name):
    """Every table of the run `name`: one per metric, each subset a row,
    each method a column (mean ± std over the seeds), with the plot and
    the run's cost report where it has one."""
    from keras_robult.experiments import cost_table, markdown_table

    results, about = load_run(name)
    metrics = list(dict.fromkeys(r.metric for r in results.results))
    parts = [provenance(name, about, results), ""]
    for metric in metrics:
        parts += [markdown_table(results, metric), ""]
    if results.cost:
        parts += [cost_table(results), ""]
    if os.path.exists(os.path.join(RESULTS_DIR, name, "missing_rate.png")):
        parts.append(
            f"![{metrics[0]} against the missing rate]"
            f"(results/{name}/missing_rate.png)"
        )
    return "\n".join(parts) + "\n"


def methods_table():
    """Markdown table of every registered method: its name, class, model,
    and where it runs (the default comparison, a group)."""
    from keras_robult.experiments.registry import (
        DEFAULT_METHODS,
        METHOD_GROUPS,
        METHODS,
    )

    rows = [
        "| `--methods` | what it is | method class | saved model | runs in |",
        "|---|---|---|---|---|",
    ]
    for name, spec in METHODS.items():
        runs = ["the default comparison"] if name in DEFAULT_METHODS else []
        runs += [
            f"`--methods {group}`"
            for group, members in METHOD_GROUPS.items()
            if name in members
        ]
        model = f"`{spec.model_class}`" if spec.model_class else "none"
        rows.append(
            f"| `{name}` | {spec.description} | "
            f"`{spec.method_class.__name__}` | {model} | "
            f"{', '.join(runs) or 'when named'} |"
        )
    return "\n".join(rows) + "\n"


def cli_reference():
    """Markdown of every subcommand and option of `robult`, and of the
    options every recipe shares."""
    from keras_robult.cli.parser import robult_parser
    from keras_robult.cli.recipe import recipe_parser

    parser = robult_parser()
    parts = [f"```text\n{parser.format_usage()}```\n"]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                parts.append(f"### `robult {name}`\n")
                parts.append(_parser_markdown(sub))
    recipe = recipe_parser("A recipe.")
    parts.append("### Options of every recipe\n")
    parts.append(
        "Each recipe adds its own options (`python recipes/NAME.py "
        "--help`); these are common to all.\n"
    )
    parts.append(_parser_markdown(recipe, usage=False))
    return "\n".join(parts)


def _parser_markdown(parser, usage=True):
    lines = []
    if parser.description:
        lines += [parser.description, ""]
    if usage:
        lines += [f"```text\n{parser.format_usage()}```", ""]
    for group in parser._action_groups:
        actions = [
            a
            for a in group._group_actions
            if a.help is not argparse.SUPPRESS
            and not isinstance(a, argparse._HelpAction)
        ]
        if not actions:
            continue
        lines += [f"**{group.title}**", ""]
        if group.description:
            lines += [group.description, ""]
        lines += ["| option | default | description |", "|---|---|---|"]
        for action in actions:
            lines.append(_action_row(action))
        lines.append("")
    return "\n".join(lines) + "\n"


def _action_row(action):
    flags = ", ".join(action.option_strings) or action.dest
    if action.nargs == 0:
        name = flags
    else:
        metavar = action.metavar or (
            "{" + ",".join(map(str, action.choices)) + "}"
            if action.choices
            else action.dest.upper()
        )
        if isinstance(metavar, tuple):
            metavar = " ".join(metavar)
        if action.nargs in ("*", "+"):
            metavar += " ..."
        name = f"{flags} {metavar}"
    default = action.default
    if default in (None, False, argparse.SUPPRESS) or action.required:
        default = "required" if action.required else ""
    elif isinstance(default, (list, tuple)):
        default = " ".join(map(str, default))
    help_text = (action.help or "").replace("%(default)s", str(default))
    help_text = help_text.replace("|", "\\|").replace("\n", " ")
    default = str(default).replace("|", "\\|")
    return f"| `{name}` | {'`' + default + '`' if default else ''} | " + (
        f"{help_text} |"
    )


def render(markdown):
    """`markdown` with every marker replaced by its generated text."""

    def replace(match):
        kind, name = match.group(1), match.group(2)
        if kind == "cli":
            return cli_reference()
        if kind == "results":
            return results_section(name)
        if kind == "summary":
            return summary_table(load_run(name)[0])
        if kind == "methods":
            return methods_table()
        raise ValueError(f"Unknown generated section: {match.group(0)}")

    return MARKER.sub(replace, markdown)


def on_page_markdown(markdown, page, config, files):  # MkDocs hook
    return render(markdown)


def readme_excerpt():
    """The README's results excerpt: the compact mfeat table."""
    results, _ = load_run("mfeat")
    return summary_table(results)


def update_readme(path, check=False):
    """Rewrites the README's excerpt; with `check`, only says whether it
    is up to date. Returns True when it is (or now is)."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    match = EXCERPT.search(text)
    if match is None:
        raise ValueError(f"{path} has no results-excerpt markers.")
    fresh = readme_excerpt()
    if match.group(2) == fresh:
        return True
    if check:
        return False
    text = text[: match.start(2)] + fresh + text[match.end(2) :]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return True


if __name__ == "__main__":
    arguments = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    arguments.add_argument("--readme", action="store_true")
    arguments.add_argument("--check", action="store_true")
    options = arguments.parse_args()
    readme = os.path.join(ROOT, "README.md")
    fresh = update_readme(readme, check=options.check)
    if not fresh:
        print(
            "README.md's results excerpt is stale: run "
            "python docs/hooks/generated_pages.py --readme"
        )
    sys.exit(0 if fresh else 1)
