"""Fig. 4's reference: under the paper's metric a detector that flags every input scores
rho * 100% (every original wrong, every adversarial example defended). Every panel draws
that line, and fig4.json gives the rho where it overtakes each defense, ours and the
paper's (CIFAR-10, PGD-2: Pure PGD 0.614, GanDef-Comb 0.708, beside the paper's 41.7%)."""

import json

import numpy as np
import pytest

from gandef_tf import report
from test_report import figures, paper_runs, read_csv, write_run  # noqa: F401 (fixture)

LABEL = "flags every input (accuracy = ρ)"


def test_flag_everything_crossover_is_where_the_lines_meet():
    assert report.flag_everything_crossover(82.06, 48.33) == pytest.approx(0.6136, abs=1e-4)
    assert report.flag_everything_crossover(63.97, 73.56) == pytest.approx(0.7076, abs=1e-4)
    for o, a in ((82.06, 48.33), (99.1, 93.38), (10.0, 0.0), (50.0, 99.0)):
        rho = report.flag_everything_crossover(o, a)
        assert float(report.overall_accuracy(o, a, rho)) == pytest.approx(100 * rho)
        # below rho the defense is ahead, above it the detector that flags everything
        assert report.overall_accuracy(o, a, rho - 0.01) > 100 * (rho - 0.01)
        assert report.overall_accuracy(o, a, min(1, rho + 0.01)) <= 100 * min(1, rho + 0.01)
    # a defense perfect under attack and useless without it IS that detector: no crossing
    assert report.flag_everything_crossover(0.0, 100.0) is None
    assert report.crossover(63.97, 73.56, 82.06, 48.33) == pytest.approx(0.4176, abs=1e-4)


def test_fig4_json_csv_and_every_panel_carry_the_reference(figures):  # noqa: F811
    from experiments import fig4

    paper_runs("quick", "cifar10")
    write_run("quick", "mnist", "gandef", 0, dict.fromkeys(("original", "fgsm", "bim", "pgd1",
                                                            "pgd2"), 0.9),
              dict.fromkeys(("original", "fgsm", "bim", "pgd1", "pgd2"), 0.8))
    paths = fig4.render("quick", "mnist,cifar10", "0")
    out = json.loads(paths["json"].read_text())
    ours, paper = out["flag_everything"], out["paper_table2"]["flag_everything"]
    for got in (ours["cifar10"]["pgd2"], paper["cifar10"]["pgd2"]):  # our runs = the paper's
        assert got["pure_pgd"] == pytest.approx(0.6136, abs=1e-4)
        assert got["gandef_comb"] == pytest.approx(0.7076, abs=1e-4)
        assert set(got) == {"pure_pgd", "mix_pgd", "logit_pairing", "gandef", "gandef_comb"}
    # MNIST: only GanDef's run; equal accuracies o = a are overtaken at rho = o / 100
    assert ours["mnist"]["fgsm"] == {"gandef": pytest.approx(0.9),
                                     "gandef_comb": pytest.approx(0.8)}
    assert set(paper["mnist"]["pgd2"]) == set(paper["cifar10"]["pgd2"])
    assert "note" in ours and "note" in paper
    assert out["cifar10"]["pgd2"]["pure_pgd"] == pytest.approx(0.4176, abs=1e-4)  # unchanged
    rows = read_csv(paths["csv"])
    (r,) = [r for r in rows if (r["dataset"], r["attack"], r["defense"])
            == ("cifar10", "pgd2", "GanDef-Comb")]
    assert r["flag_everything_rho"] == "0.7076"

    panels = {d: fig4.means(report.load_results("quick", [d], [0]), d) for d in ("mnist", "cifar10")}
    crosses = {d: report.crossovers(m, fig4.ATTACKS, fig4.BASELINES) for d, m in panels.items()}
    fig = fig4.plot(panels, crosses)
    try:
        axes = fig.get_axes()
        assert len(axes) == 2 * len(fig4.ATTACKS)
        for ax in axes:
            (line,) = [ln for ln in ax.get_lines() if ln.get_label() == LABEL]
            np.testing.assert_allclose(line.get_ydata(), 100 * np.asarray(line.get_xdata()))
            assert LABEL in [t.get_text() for t in ax.get_legend().get_texts()]
    finally:
        report.pyplot().close(fig)


def test_without_runs_fig4_json_has_only_the_papers_reference(figures):  # noqa: F811
    from experiments import fig4

    out = json.loads(fig4.render("quick", "cifar10", "0")["json"].read_text())
    assert "flag_everything" not in out
    assert out["paper_table2"]["flag_everything"]["cifar10"]["pgd2"]["gandef_comb"] == \
        pytest.approx(0.7076, abs=1e-4)


def test_a_figure_footer_gives_the_runs_date_range_not_every_day():
    from gandef_tf.outputs import short_footer

    prov = dict(preset="quick", seeds=[0, 1], n_runs=3, rendered_commit="0123456789abcdef",
                run_dates=["2026-11-28T10:00", "2026-11-26T09:00", "2026-11-27T08:00"])
    line = short_footer(prov)
    assert "3 runs dated 2026-11-26 to 2026-11-28 " in line and "seeds 0, 1" in line
    assert line.endswith("rendered at commit 0123456789ab")
    assert "dated 2026-11-28 (" in short_footer(dict(prov, run_dates=["2026-11-28T10:00"]))
