"""How far one results table is from another: per method (column), the
largest difference over the rows and the differences on the rows a
comparison is judged by (the single-modality mean, the missing-rate AUC,
all modalities).

    python benchmarks/compare_tables.py docs/results/mfeat/results.json \
        results/mfeat-.../results.md

A `results.json` is read as its primary metric's table; of a markdown
file, the first table whose header starts with `| subset |`
is read (cells `mean ± std` or `mean`); methods and rows present in both
are compared.
"""

import argparse

KEY_ROWS = ("single-modality mean", "missing-rate AUC", "all")


def first_table(path):
    """`(methods, {row: {method: mean}})` of the file's first results
    table."""
    methods, rows = None, {}
    if path.endswith(".json"):
        import json

        from keras_robult.experiments import markdown_table

        with open(path) as handle:
            lines = markdown_table(json.load(handle)).splitlines()
    else:
        with open(path) as handle:
            lines = handle.read().splitlines()
    for line in lines:
        line = line.strip()
        if methods is None:
            if line.startswith("| subset |"):
                methods = [c.strip() for c in line.strip("|").split("|")]
                methods = methods[1:]
            continue
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        if set(cells[0]) <= {"-"}:
            continue
        rows[cells[0]] = {
            m: float(c.split("±")[0]) for m, c in zip(methods, cells[1:])
        }
    if methods is None:
        raise SystemExit(f"{path}: no results table (| subset | ...)")
    return methods, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "reference", help="e.g. docs/results/mfeat/results.json"
    )
    parser.add_argument("new", help="e.g. a run's results.md")
    args = parser.parse_args()
    ref_methods, ref = first_table(args.reference)
    new_methods, new = first_table(args.new)
    methods = [m for m in ref_methods if m in new_methods]
    common = [r for r in ref if r in new]
    print(f"{len(common)} rows, {len(methods)} methods in both tables")
    header = ["method", "largest |diff| (row)"]
    header += [f"{row} diff" for row in KEY_ROWS]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for method in methods:
        diffs = {r: new[r][method] - ref[r][method] for r in common}
        worst = max(diffs, key=lambda r: abs(diffs[r]))
        cells = [method, f"{abs(diffs[worst]):.3f} ({worst})"]
        cells += [f"{diffs[r]:+.3f}" if r in diffs else "-" for r in KEY_ROWS]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
