"""Bad input through the command line: a short message naming the problem and a non-zero
exit, before any training. Most cases run the modules' main() in-process through absl's
flag parser (TensorFlow is already imported); a few run `python -m experiments.<name>` in
subprocesses, all started at once because each spends ~6 s importing TensorFlow."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from absl import flags

import experiments.evaluate as evaluate_cli
import experiments.train as train_cli
from conftest import REPO
from experiments import cli
from gandef_tf import GandefError, runs
from gandef_tf.config import get_config

FLAGS = flags.FLAGS


# ---------------------------------------------------------------- in-process

@pytest.fixture
def run_main(capsys):
    """run_main(module, args) -> (exit status, stderr lines) of the module's guarded main."""
    if "preset" not in FLAGS:
        cli.define_run_flags()

    def run(module, args, positional=()):
        FLAGS.unparse_flags()
        try:
            FLAGS(["prog"] + list(args))
            capsys.readouterr()
            try:
                cli.guarded(module.main)(["prog"] + list(positional))
            except SystemExit as e:
                return e.code, capsys.readouterr().err.splitlines()
            return 0, capsys.readouterr().err.splitlines()
        finally:
            FLAGS.unparse_flags()

    return run


@pytest.mark.parametrize("module", [evaluate_cli, train_cli])
@pytest.mark.parametrize("args,word", [
    (["--eps=1.5"], "eps"), (["--eps=0"], "eps"), (["--eps_iter=2"], "eps_iter"),
    (["--threshold=1.5"], "threshold"), (["--threshold=-0.5"], "threshold"),
    (["--threads=-1"], "threads"), (["--strong_eval_n=0"], "strong_eval_n"),
    (["--eval_attacks=pgd2,apgd_t"], "unknown attack")])
def test_out_of_range_values_are_one_error_line(module, args, word, run_main, isolated_dirs):
    code, err = run_main(module, args)
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and word in err[0]
    assert not isolated_dirs[0].exists() and not isolated_dirs[1].exists()  # failed before training


def test_apgd_without_art_is_one_error_line_before_training(run_main, isolated_dirs,
                                                            monkeypatch):
    from gandef_tf import autoattack

    monkeypatch.setattr(autoattack, "missing_reason", lambda: "IBM ART is not installed")
    code, err = run_main(evaluate_cli, ["--preset=smoke", "--eval_attacks=pgd2,apgd_ce"])
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: apgd_ce needs IBM ART: IBM ART is not installed; install")
    assert not isolated_dirs[0].exists() and not isolated_dirs[1].exists()


def test_unexpected_positional_argument(run_main, isolated_dirs):
    code, err = run_main(train_cli, ["--preset=smoke"], positional=["mnist"])
    assert code == 2 and len(err) == 1 and "unexpected arguments" in err[0]
    assert not isolated_dirs[0].exists()


@pytest.mark.parametrize("flag,value", [("dataset", "svhn"), ("method", "adv"),
                                        ("preset", "huge"), ("disc_batch", "old")])
def test_unknown_enum_values_are_refused_by_the_parser(flag, value):
    if "preset" not in FLAGS:
        cli.define_run_flags()
    FLAGS.unparse_flags()
    try:
        with pytest.raises(flags.IllegalFlagValueError, match=value):
            FLAGS(["prog", f"--{flag}={value}"])
    finally:
        FLAGS.unparse_flags()


@pytest.mark.parametrize("module", [evaluate_cli, train_cli])
def test_run_folder_of_another_config_is_refused(module, run_main, isolated_dirs):
    other = get_config("smoke", "mnist", "gandef", gamma=7.0)
    path = runs.run_dir(other) / "config.json"
    runs.write_json(path, {"config": other.to_dict()})
    before = path.read_bytes()
    code, err = run_main(module, ["--preset=smoke", "--method=gandef"])
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: ") and "another config" in err[0] and "gamma" in err[0]
    assert path.read_bytes() == before
    assert not isolated_dirs[1].exists()  # nothing trained, nothing evaluated


@pytest.mark.parametrize("arg,message", [
    ("--dataset=svhn", "error: flag --dataset=svhn: value should be one of <mnist|cifar10>"),
    ("--no_such_flag=1", "error: Unknown command line flag 'no_such_flag'")])
def test_the_commands_flag_parser_makes_a_bad_flag_one_line(arg, message, capsys):
    """cli.run's parser: absl's own prints two lines and exits 1."""
    if "preset" not in FLAGS:
        cli.define_run_flags()
    FLAGS.unparse_flags()
    try:
        with pytest.raises(SystemExit) as exit_:
            cli.parse_flags(["prog", arg])
    finally:
        FLAGS.unparse_flags()
    assert exit_.value.code == 2 and capsys.readouterr().err.splitlines() == [message]


def test_unknown_flag_is_refused_by_the_parser():
    if "preset" not in FLAGS:
        cli.define_run_flags()
    FLAGS.unparse_flags()
    try:
        with pytest.raises(flags.UnrecognizedFlagError, match="no_such_flag"):
            FLAGS(["prog", "--no_such_flag=1"])
    finally:
        FLAGS.unparse_flags()


def test_unreadable_data_file_is_named(run_main, tmp_path, monkeypatch):
    bad = tmp_path / "data"
    bad.mkdir()
    (bad / "mnist.npz").write_bytes(b"garbage, not a zip archive")
    monkeypatch.setenv("GANDEF_DATA_DIR", str(bad))
    code, err = run_main(evaluate_cli, ["--preset=smoke", "--method=vanilla"])
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: ") and str(bad / "mnist.npz") in err[0]


# ---------------------------------------------------------------- subprocesses

def _env(base, **extra):
    # Neither TF_CPP_MIN_LOG_LEVEL (conftest sets it for this process) nor GANDEF_TF_LOG:
    # the commands must keep TensorFlow's start-up logging off stderr by themselves.
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "GANDEF_TF_LOG")}
    env.update(GANDEF_RUNS_DIR=str(base / "runs"), GANDEF_RESULTS_DIR=str(base / "results"),
               GANDEF_CACHE_DIR=str(base / "cache"), CUDA_VISIBLE_DEVICES="")
    env.update({k: str(v) for k, v in extra.items()})
    return env


# name: (module, bad flag, its whole stderr after "error: "); the modules import TensorFlow.
BAD_FLAGS = {
    "dataset": ("train", "--dataset=nope", "flag --dataset=nope: value should be one of "
                "<mnist|cifar10>"),
    "method": ("evaluate", "--method=svhn", "flag --method=svhn: value should be one of "
               "<vanilla|pure_pgd|mix_pgd|logit_pairing|gandef|gandef_v1>"),
    "preset": ("evaluate", "--preset=nope", "flag --preset=nope: value should be one of "
               "<paper|quick|smoke>"),
    "unknown": ("bench", "--no_such_flag=1", "Unknown command line flag 'no_such_flag'"),
}


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """Start every subprocess case at once; {name: (returncode, stderr, base folder)}."""
    cases = {
        **{name: (module, [arg], {}) for name, (module, arg, _) in BAD_FLAGS.items()},
        "eps": ("evaluate", ["--eps=1.5"], {}),
        "data": ("train", ["--preset=smoke", "--method=vanilla"], {"data": True}),
    }
    procs = {}
    for name, (module, args, opts) in cases.items():
        base = tmp_path_factory.mktemp(f"cli_{name}")
        extra = {}
        if opts.get("data"):
            (base / "data").mkdir()
            (base / "data" / "mnist.npz").write_bytes(b"\x00garbage" * 100)
            extra = dict(GANDEF_DATA_DIR=base / "data", HOME=base)
        procs[name] = (subprocess.Popen(
            [sys.executable, "-m", f"experiments.{module}", *args], cwd=REPO, env=_env(base, **extra),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), base)
    out = {}
    for name, (p, base) in procs.items():
        _, err = p.communicate(timeout=240)
        out[name] = (p.returncode, err, base)
    return out


def test_set_threads_fixes_both_pools_before_tensorflow_starts():
    code = ("from experiments import cli; cli.set_threads(1); import tensorflow as tf; "
            "print(tf.config.threading.get_intra_op_parallelism_threads(), "
            "tf.config.threading.get_inter_op_parallelism_threads())")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(REPO / "nonexistent"),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["1", "1"], out.stderr


@pytest.mark.parametrize("name", BAD_FLAGS)
def test_cli_bad_flag_is_exactly_one_error_line(cli_runs, name):
    """Raw stderr, no filter: TensorFlow's start-up logging must not precede the error."""
    code, err, base = cli_runs[name]
    assert code == 2 and err.splitlines() == [f"error: {BAD_FLAGS[name][2]}"], err
    assert not (base / "runs").exists() and not (base / "results").exists()


def test_cli_eps_out_of_range(cli_runs):
    code, err, base = cli_runs["eps"]
    lines = err.splitlines()  # raw: no TensorFlow start-up line before or after the error
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), err
    assert "eps" in lines[0] and "1.5" in lines[0]
    assert not (base / "runs").exists() and not (base / "results").exists()


def test_cli_unreadable_data_file(cli_runs):
    code, err, base = cli_runs["data"]
    lines = err.splitlines()  # raw, with a fresh HOME: no TensorFlow or Matplotlib notice
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("error: ") and str(base / "data" / "mnist.npz") in lines[0]


@pytest.mark.parametrize("datasets,want", [(None, "--datasets=mnist,cifar10"),
                                           ("mnist", "--datasets=mnist")])
def test_make_probe_names_its_datasets(datasets, want):
    """`make probe` once passed an empty --datasets (an undefined make variable)."""
    args = ["make", "-n", "probe", "PRESET=paper"] + ([f"DATASETS={datasets}"] if datasets else [])
    out = subprocess.run(args, cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert want + " " in out.replace("\\\n", " ")


def test_probe_refuses_an_empty_dataset_list():
    # as a user runs it: conftest's TF_CPP_MIN_LOG_LEVEL=2 would let TensorFlow's cuInit
    # line through, which experiments.tf_log keeps off a user's command line
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    p = subprocess.run([sys.executable, "-m", "experiments.probe", "--paper_check",
                        "--preset=paper", "--datasets="], cwd=REPO, capture_output=True,
                       text=True, timeout=120, env=env)
    assert p.returncode != 0
    assert p.stderr.strip().splitlines() == [
        "error: --datasets must name some of ('mnist', 'cifar10'), got []"]


def test_probe_json_keeps_the_datasets_not_probed_again():
    from experiments import probe

    prov = lambda c: {"commit": c, "date": "d" + c, "device": "CPU"}
    old = {"probe": {"mnist": {"vanilla": 1}, "cifar10": {"vanilla": 2}}, **prov("a"),
           "provenance_by_dataset": {"mnist": prov("a"), "cifar10": prov("a")}}
    out = probe.merge(old, {"probe": {"cifar10": {"vanilla": 3}}, **prov("b")}, ["cifar10"])
    assert out["probe"] == {"mnist": {"vanilla": 1}, "cifar10": {"vanilla": 3}}
    assert out["provenance_by_dataset"] == {"mnist": prov("a"), "cifar10": prov("b")}
    assert out["commit"] == "b"
    assert probe.merge({}, {"probe": {"mnist": {}}, **prov("c")}, ["mnist"])[
        "provenance_by_dataset"] == {"mnist": prov("c")}


# ---------------------------------------------------------------- bad input, found by trying it

NO_SUCH_SEED = ["--preset=quick", "--seeds=7"]
RENDERS_OF_NO_RUN = {  # every render target, asked only for runs that do not exist
    "table2": ["--datasets=mnist"], "fig3": ["--datasets=mnist"], "fig4": ["--datasets=mnist"],
    "roc": ["--datasets=mnist"], "convergence": ["--dataset=mnist"],
    "gamma_sweep": ["--dataset=mnist", "--render_only"]}


def tree_state(folder):
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def bad_input_runs(tmp_path_factory):
    """The committed results/, copies of the committed figures; every command at once.
    {name: (returncode, stderr lines, stdout)}, and the figures before and after."""
    base = tmp_path_factory.mktemp("bad_input")
    figures = base / "figures"
    shutil.copytree(REPO / "figures" / "quick", figures / "quick")
    before = tree_state(figures)
    env = _env(base, GANDEF_RESULTS_DIR=REPO / "results", GANDEF_FIGURES_DIR=figures)
    cmds = {name: [f"experiments.{name}", *args, *NO_SUCH_SEED]
            for name, args in RENDERS_OF_NO_RUN.items()}
    cmds["negative_seed"] = ["experiments.evaluate", "--dataset=mnist", "--method=gandef",
                             "--seed=-1"]
    procs = {name: subprocess.Popen(
        [sys.executable, "-m", *cmd], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env if name != "negative_seed" else _env(base / "seed"))
        for name, cmd in cmds.items()}
    out = {}
    for name, p in procs.items():
        stdout, err = p.communicate(timeout=240)
        out[name] = (p.returncode, err.splitlines(), stdout)
    return out, before, tree_state(figures), base


def test_a_negative_seed_is_one_error_line_before_anything_starts(bad_input_runs):
    out, _, _, base = bad_input_runs
    code, err, stdout = out["negative_seed"]
    assert code == 2 and err == ["error: seed must be an integer in [0, 2**32), got -1"], err
    assert stdout == ""  # not even the precision notice of a run about to start
    assert not (base / "seed" / "runs").exists() and not (base / "seed" / "results").exists()
    with pytest.raises(GandefError, match="data_seed"):
        get_config("smoke", "mnist", "vanilla", data_seed=-3)


@pytest.mark.parametrize("name", RENDERS_OF_NO_RUN)
def test_a_render_of_no_existing_run_refuses_and_writes_nothing(bad_input_runs, name):
    out, before, after, _ = bad_input_runs
    code, err, _ = out[name]
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: no quick ") and "nothing rendered" in err[0], err
    assert after == before  # every committed figure as it was, byte for byte, mtime too


def test_refusals_and_pricing_answer_without_starting_tensorflow(tmp_path):
    """A refused run is priced from files and constants: TensorFlow is not imported (its
    start-up alone takes seconds), on a host without a GPU's device file."""
    if any(Path("/dev").glob("nvidia[0-9]*")) or Path("/dev/kfd").exists():
        pytest.skip("a GPU host names its device through TensorFlow")
    code = ("import sys\n"
            "from experiments.evaluate import evaluate\n"
            "from gandef_tf import GandefError\n"
            "from gandef_tf.config import get_config\n"
            "try:\n"
            "    evaluate(get_config('paper', 'cifar10', 'gandef'))\n"
            "except GandefError as e:\n"
            "    print('refused:', e)\n"
            "print('tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(tmp_path),
                         capture_output=True, text=True, timeout=120)
    lines = out.stdout.splitlines()
    assert out.returncode == 0 and lines[0].startswith("refused:") and "--train" in lines[0], out
    assert lines[-1] == "False"
