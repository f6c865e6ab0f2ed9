"""How every table and figure is written: provenance, its footer line, atomic writes that
leave a file alone when only its rendered-at line would change, PNGs with their key.

    from gandef_tf import outputs
    prov = outputs.provenance("quick", [0], runs_read)     # who made it from what
    outputs.write_json(path, {"provenance": prov, ...})      # unwritten if only the date moved
    outputs.save_figure(fig, path, prov)                     # footer drawn in, key in metadata

gandef_tf.report re-exports these names, which the renderers use.
"""

import csv
import datetime
import hashlib
import io
import json
import re
import textwrap
from pathlib import Path

from gandef_tf import runs


def provenance(preset, seeds, loaded_runs=()):
    """Who made an output from what: the runs' commits and dates, and the renderer's."""
    commits = sorted({r.get("commit", "unknown") for r in loaded_runs})
    dates = sorted(r["date"] for r in loaded_runs if r.get("date"))
    return {"preset": preset, "seeds": list(seeds), "run_commits": commits,
            "run_dates": [dates[0], dates[-1]] if dates else [], "n_runs": len(loaded_runs),
            "rendered_commit": runs.commit(),
            "rendered_date": datetime.datetime.now(datetime.timezone.utc)
            .isoformat(timespec="seconds")}


def footer(prov):
    """One line for a Markdown or LaTeX file, the runs' commits included (a figure gets
    short_footer)."""
    runs_part = (f"runs: {prov['n_runs']}, commit(s) {', '.join(prov['run_commits'])}, "
                 f"dated {' to '.join(dict.fromkeys(prov['run_dates']))}"
                 if prov.get("n_runs") else "runs: none found")
    return (f"preset {prov['preset']}; seeds {', '.join(map(str, prov['seeds'])) or '-'}; "
            f"{runs_part}; rendered {prov['rendered_date']} at commit {prov['rendered_commit']}")


def short_footer(prov):
    """The line drawn on a figure: preset, seeds, how many runs and when they were made,
    the commit it was rendered at; the runs' commits are in the json beside it."""
    days = sorted({d[:10] for d in prov.get("run_dates", [])})
    span = " to ".join(dict.fromkeys((days or ["?"])[:1] + days[-1:]))  # first to last day
    runs_part = (f"{prov['n_runs']} run{'s' * (prov['n_runs'] != 1)} dated {span} "
                 "(run commits: in the .json beside this file)"
                 if prov.get("n_runs") else "no runs found")
    rendered = prov["rendered_commit"]
    rendered = rendered[:12] + ("-dirty" if rendered.endswith("-dirty") else "")
    return (f"preset {prov['preset']}; seeds {', '.join(map(str, prov['seeds'])) or '-'}; "
            f"{runs_part}; rendered at commit {rendered}")


# What differs between two renders of the same inputs: when and at which commit. An
# output equal to the file on disk apart from these is not rewritten, so re-rendering the
# committed runs leaves the committed figures as they are.
RENDERED_AT = re.compile(rb'("rendered_(?:commit|date)": )"[^"]*"|rendered (?:\S+ )?at commit \S+')


def _masked(data):
    return RENDERED_AT.sub(rb"\1<rendered>", data if isinstance(data, bytes) else data.encode())


def write_output(path, data):
    """Write text or bytes atomically, unless the file holds the same apart from RENDERED_AT."""
    path = Path(path)
    if path.exists() and _masked(path.read_bytes()) == _masked(data):
        return
    runs.atomic_write(path, data)


def write_csv(path, header, rows):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    write_output(path, buf.getvalue())


def write_json(path, obj):
    # allow_nan=False: a NaN would be invalid JSON; None (null) is what "none" means here.
    write_output(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def _png_key(path):
    try:
        from PIL import Image

        with Image.open(path) as im:
            return im.text.get("gandef_content")
    except Exception:  # no file, or not one of ours: render it
        return None


def save_figure(fig, path, prov):
    """PNG with the provenance footer drawn on it and in its metadata, written atomically;
    left as it is when its pixels without the footer and its provenance (RENDERED_AT
    aside) are those of the file there, whose key says so."""
    plt = pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    text = short_footer(prov)
    key = hashlib.sha256(buf.getvalue() + _masked(json.dumps(prov, sort_keys=True))
                         + _masked(text)).hexdigest()
    if _png_key(path) == key:
        plt.close(fig)
        return
    # Below the axes, wrapped to the figure's width; bbox_inches="tight" keeps it in frame.
    text = textwrap.fill(text, width=int(fig.get_figwidth() * 20))
    fig.text(0.01, 0.0, text, fontsize=6, color="0.35", ha="left", va="top")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight",
                metadata={"Description": json.dumps(prov, sort_keys=True), "gandef_content": key})
    plt.close(fig)
    runs.atomic_write(path, buf.getvalue())
