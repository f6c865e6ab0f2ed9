"""README.md and docs/*.md agree with the rendered files they copy, and every relative
link in them resolves.

    python -m pytest -q tests/test_docs.py
    python tests/test_docs.py --write      # rewrite every marked block from its render

A table copied from a rendered file sits between two markers, and the block must be
exactly what its render gives (so a hand-edited cell, or a render that moved on without
the docs, fails here):

    <!-- begin: figures/quick/table2.md table=1 rows=MNIST -->
    | dataset | examples | ... |        the render's table 1 (1-based), header and the
    ...                                  rows whose first cell is MNIST (all rows if no rows=)
    <!-- end: figures/quick/table2.md -->

`compact` instead of `table=...` gives Table 2 at a glance: the paper's five rows and
the worst case, each cell "ours / the paper's value" from the render's cell, with † where
the render says the seeds of a worst case met different attacks.
"""

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- begin: (\S+)([^>]*?) -->\n)(.*?)(<!-- end: \2 -->)", re.S)
COMPACT_ROWS = ("Original", "FGSM", "BIM", "PGD-1", "PGD-2", "Worst case")


def doc_files():
    return [REPO / "README.md"] + sorted((REPO / "docs").glob("*.md"))


def tables(text):
    """Every markdown table of a file, as lists of lines."""
    found, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            found, current = found + [current], []
    return found


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def compact_cell(cell):
    """'64.20 ± 3.25 (n=2) (paper 82.06, -17.86)' -> '64.20 ± 3.25 (n=2) / 82.06'."""
    if cell == "missing":
        return cell
    ours = re.split(r" \(paper | \[", cell)[0]
    paper = re.search(r"\(paper ([-0-9.]+),", cell)
    return ours + (f" / {paper.group(1)}" if paper else "") + (
        " †" if "[seeds differ" in cell else "")


def expected_block(path, options):
    """The lines a block with these options must hold, from the render at `path`."""
    found = tables((REPO / path).read_text())
    opts = dict(o.split("=", 1) if "=" in o else (o, "") for o in options.split())
    if "compact" in opts:
        head, _, *rows = found[0]
        names = cells(head)
        out = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
        return out + ["| " + " | ".join(c[:2] + [compact_cell(x) for x in c[2:]]) + " |"
                      for c in map(cells, rows) if c[1] in COMPACT_ROWS]
    head, sep, *rows = found[int(opts.get("table", 1)) - 1]
    keep = opts.get("rows")
    return [head, sep] + [r for r in rows if keep is None or cells(r)[0] == keep]


def blocks(text):
    """[(render path, options, the block's lines)] of one file."""
    return [(m.group(2), m.group(3), m.group(4).strip("\n").splitlines())
            for m in BLOCK.finditer(text)]


def write_blocks():
    """Rewrite every marked block of README.md and docs/ from its render."""
    for f in doc_files():
        text = f.read_text()
        new = BLOCK.sub(lambda m: m.group(1) + "\n".join(expected_block(m.group(2), m.group(3)))
                        + "\n" + m.group(5), text)
        if new != text:
            f.write_text(new)
            print(f"rewrote {f.relative_to(REPO)}")


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]{2,}|`", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path):
    seen, out = {}, set()
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    for heading in re.findall(r"^#{1,6} +(.+?) *$", text, re.M):
        s = slug(heading)
        out.add(s if s not in seen else f"{s}-{seen[s]}")
        seen[s] = seen.get(s, 0) + 1
    return out


def links(path):
    """Every relative link target of a markdown file, outside code blocks and spans."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "``", text)
    return [t for t in re.findall(r"\]\(([^)\s]+)\)", text)
            if not re.match(r"[a-z]+:", t)]


# --- tests ----------------------------------------------------------------------------

def test_docs_exist_and_readme_is_short():
    assert len((REPO / "README.md").read_text().splitlines()) <= 300
    assert len(doc_files()) > 2


def test_every_copied_table_is_the_render():
    checked = 0
    for f in doc_files():
        for path, options, lines in blocks(f.read_text()):
            assert (REPO / path).is_file(), f"{f.name}: block copies {path}, which is missing"
            want = expected_block(path, options)
            for i, (got, exp) in enumerate(zip(lines + [""] * len(want), want)):
                assert got == exp, (f"{f.relative_to(REPO)}: the block from {path}{options} "
                                    f"differs from the render at its line {i + 1}:\n  {got}\n"
                                    f"render:\n  {exp}\n(python tests/test_docs.py --write)")
            assert len(lines) == len(want), f"{f.name}: {path}{options} has extra lines"
            checked += 1
    assert checked >= 3  # README's Table 2 at a glance, and the full tables in docs/


def test_readme_shows_table2_with_the_papers_values():
    from gandef_tf import report
    text = (REPO / "README.md").read_text()
    compact = [lines for path, options, lines in blocks(text)
               if path == "figures/quick/table2.md" and "compact" in options]
    assert compact, "README.md has no compact Table 2 block"
    names = {v: k for k, v in report.DATASET_NAMES.items()}
    examples = {v: k for k, v in report.EXAMPLE_NAMES.items()}
    seen = 0
    for row in map(cells, compact[0][2:]):
        for column, cell in zip(report.COLUMNS, row[2:]):
            paper = report.paper_value(names[row[0]], examples[row[1]], column)
            if cell != "missing" and paper is not None:
                assert cell.endswith(f" / {paper:.2f}"), (row[0], row[1], column, cell)
                seen += 1
    assert seen == 2 * 5 * 6


def test_every_relative_link_resolves():
    for f in doc_files():
        for target in links(f):
            path, _, anchor = target.partition("#")
            dest = (f.parent / path).resolve() if path else f
            assert dest.exists(), f"{f.relative_to(REPO)}: link to {target}: no such file"
            if anchor and dest.suffix == ".md":
                assert anchor in anchors(dest), (
                    f"{f.relative_to(REPO)}: link to {target}: no such heading in {dest.name}")


def test_the_link_check_can_fail(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# A title: it's γ\n\n[x](page.md#a-title-its-γ) [y](missing.md) `[z](q)`\n")
    assert links(page) == ["page.md#a-title-its-γ", "missing.md"]
    assert anchors(page) == {"a-title-its-γ"}


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_docs.py --write")
    write_blocks()
