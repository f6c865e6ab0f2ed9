"""experiments.reproduce: a committed run whose model is gone is retrained and checked
against its committed history before new attacks may extend its results; a retraining that
differs is refused and moved aside, and the committed files are never written."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO
from gandef_tf import GandefError, runs, training
from gandef_tf import evaluate as ev
from gandef_tf.config import get_config
from experiments.reproduce import first_difference, reproduce
from experiments.train import train

pytestmark = pytest.mark.filterwarnings("ignore:`shuffle=True`:UserWarning")


@pytest.fixture(autouse=True)
def tiny(tiny_models):
    """Every run here trains tiny_classifier() in place of LeNet (the subprocesses' too):
    a reproduction repeats whatever network its run trained."""


def committed_run(attacks=("fgsm",)):
    """A finished smoke run whose model is then deleted, as on a fresh clone."""
    cfg = get_config("smoke", "mnist", "vanilla", n_train=64, n_test=16, epochs=2,
                     eval_attacks=attacks, eval_batch_size=16)
    ev.evaluate(cfg, verbose=0)
    shutil.rmtree(runs.run_dir(cfg))
    files = {p.name: p.read_bytes() for p in runs.results_dir(cfg).iterdir()}
    return cfg, files


def test_a_reproduced_model_extends_the_committed_results(fake_data):
    cfg, files = committed_run()
    rec = reproduce(cfg)
    assert rec["identical"] and (runs.run_dir(cfg) / "reproduced.json").exists()
    assert {p.name: p.read_bytes() for p in runs.results_dir(cfg).iterdir()} == files
    assert reproduce(cfg) == rec  # done once: asked again, nothing is retrained

    committed = json.loads(files["results.json"])
    committed["train_seconds"] = 9999.9  # so that no reproduction can take the same time
    (runs.results_dir(cfg) / "results.json").write_text(json.dumps(committed))
    old = ev.load_predictions(runs.results_dir(cfg) / "predictions.npz")
    wider = get_config("smoke", "mnist", "vanilla", n_train=64, n_test=16, epochs=2,
                       eval_attacks=("fgsm", "bim"), eval_batch_size=16)
    res = ev.evaluate(wider, verbose=0)
    new = ev.load_predictions(runs.results_dir(cfg) / "predictions.npz")
    assert (new["pred_fgsm"] == old["pred_fgsm"]).all() and "pred_bim" in new
    [ext] = res["extensions"]
    assert ext["attacks"] == ["bim"] and ext["model"]["reproduced"] is True
    # the run's training time stays the committed model's; the reproduction's is its own
    reproduction = runs.read_json(runs.run_dir(cfg) / "train.json")["train_seconds"]
    assert res["train_seconds"] == 9999.9
    assert ext["model"]["train_seconds"] == round(reproduction, 1)


def test_a_retraining_that_differs_is_refused_and_moved_aside(fake_data):
    cfg, _ = committed_run()
    hist = runs.results_dir(cfg) / "history.csv"
    rows = hist.read_text().splitlines()
    fields = rows[2].split(",")
    fields[1] = "0.123456"  # the committed loss of epoch 2, as another model would have it
    rows[2] = ",".join(fields)
    hist.write_text("\n".join(rows) + "\n")
    files = {p.name: p.read_bytes() for p in runs.results_dir(cfg).iterdir()}
    with pytest.raises(GandefError, match="history.csv row 2, loss: committed 0.123456"):
        reproduce(cfg)
    assert not runs.run_dir(cfg).exists()  # evaluate cannot extend with that model
    assert list(runs.run_dir(cfg).parent.glob("seed0.mismatch-*"))
    assert {p.name: p.read_bytes() for p in runs.results_dir(cfg).iterdir()} == files


def test_another_thread_count_is_refused_before_training(fake_data):
    cfg, files = committed_run()
    info = runs.results_dir(cfg) / "config.json"
    record = json.loads(info.read_text())
    assert record["threads"] == runs.threads()  # what the training ran with is recorded
    ours = runs.intra_op_threads(runs.threads())
    record["threads"] = {"intra_op": ours + 1, "inter_op": ours + 1, "cpus": ours + 1}
    info.write_text(json.dumps(record))
    with pytest.raises(GandefError, match=f"trained with {ours + 1} TensorFlow thread.*"
                                          f"pass --threads={ours + 1}"):
        reproduce(cfg)
    assert not runs.run_dir(cfg).exists()  # refused before any training

    del record["threads"]  # an older run: the mismatch names the unrecorded thread count
    info.write_text(json.dumps(record))
    hist = runs.results_dir(cfg) / "history.csv"
    hist.write_text(hist.read_text().replace("\n1,", "\n1,9", 1))
    with pytest.raises(GandefError, match="row 1, loss.*thread count is not recorded"):
        reproduce(cfg)


def test_another_onednn_setting_is_refused_before_training(fake_data):
    cfg, _ = committed_run()
    info = runs.results_dir(cfg) / "config.json"
    record = json.loads(info.read_text())
    assert record["onednn"] == runs.onednn() is not None  # the kernels trained with
    record["onednn"] = not runs.onednn()
    info.write_text(json.dumps(record))
    want = int(record["onednn"])
    with pytest.raises(GandefError, match=f"oneDNN kernels {'on' if want else 'off'}.*"
                                          f"TF_ENABLE_ONEDNN_OPTS={want}$"):
        reproduce(cfg)
    assert not runs.run_dir(cfg).exists()  # refused before any training


def stopped_config():
    return get_config("smoke", "mnist", "vanilla", n_train=64, n_test=16, epochs=3,
                      eval_attacks=("fgsm",), eval_batch_size=16)


def test_a_run_stopped_and_resumed_is_repeated_by_stopping_there(fake_data):
    cfg = stopped_config()
    assert train(cfg, verbose=0, stop_after=2) is None  # as a session's end stops a run
    assert runs.checkpoint_epoch(runs.run_dir(cfg)) == 2
    assert not (runs.run_dir(cfg) / "train.json").exists()
    ev.evaluate(cfg, verbose=0)  # resumed at epoch 3, finished and evaluated
    info = runs.results_dir(cfg) / "config.json"
    assert json.loads(info.read_text())["resumed_after"] == [2]
    shutil.rmtree(runs.run_dir(cfg))
    assert reproduce(cfg)["resumed_after"] == [2]  # stopped and resumed there unasked

    record = json.loads(info.read_text())  # an older run, trained before the record
    del record["resumed_after"], record["threads"]
    info.write_text(json.dumps(record))
    shutil.rmtree(runs.run_dir(cfg))
    with pytest.raises(GandefError, match="row 3.*epochs 1-2 are identical.*--stop_after=2"
                                          r"[^;]*; \S+ is untouched"):
        reproduce(cfg)  # straight through, epoch 3 sees another data order; threads not blamed
    assert reproduce(cfg, stop_after=2) is None
    assert not (runs.run_dir(cfg) / "reproduced.json").exists()
    assert reproduce(cfg)["resumed_after"] == [2]
    shutil.rmtree(runs.run_dir(cfg))
    with pytest.raises(GandefError, match="stop_after must be between 1 and 2"):
        reproduce(cfg, stop_after=3)


def test_a_resume_in_a_new_process_is_repeated_in_one(fake_data):
    """The committed run is stopped in one process and resumed in another, as across
    sessions; the reproduction stops and resumes inside one process."""
    script = ("import sys, pytest\n"
              "from conftest import patch_load_data, use_tiny_classifier\n"
              "from gandef_tf import evaluate as ev\n"
              "from experiments.train import train\n"
              "from test_reproduce import stopped_config\n"
              "mp = pytest.MonkeyPatch()\n"
              "patch_load_data(mp)\n"
              "use_tiny_classifier(mp)\n"
              "if sys.argv[1] == 'stop':\n"
              "    train(stopped_config(), verbose=0, stop_after=1)\n"
              "else:\n"
              "    ev.evaluate(stopped_config(), verbose=0)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    for step in ("stop", "resume"):
        subprocess.run([sys.executable, "-c", script, step], env=env, check=True,
                       capture_output=True, timeout=300)
    cfg = stopped_config()
    shutil.rmtree(runs.run_dir(cfg))
    assert reproduce(cfg)["resumed_after"] == [1]


def test_only_committed_runs_without_a_model_are_reproduced(fake_data):
    cfg = get_config("smoke", "mnist", "vanilla", n_train=64, n_test=16, epochs=1,
                     eval_attacks=("fgsm",), eval_batch_size=16)
    with pytest.raises(GandefError, match="holds no results to reproduce"):
        reproduce(cfg)
    ev.evaluate(cfg, verbose=0)  # its model is still here: nothing to reproduce
    with pytest.raises(GandefError, match="already holds a finished model"):
        reproduce(cfg)


def test_first_difference_ignores_only_the_seconds(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d, secs in ((a, "1.0"), (b, "2.0")):
        d.mkdir()
        (d / "history.csv").write_text(f"epoch,loss,seconds\n1,0.5,{secs}\n")
    assert first_difference(a, b) is None
    (b / "history.csv").write_text("epoch,loss,seconds\n1,0.5,1.0\n2,0.4,1.0\n")
    assert "1 committed rows and 2 retrained" in first_difference(a, b)
    (b / "history.csv").write_text("epoch,loss,seconds\n1,0.5,3.0\n")
    (a / "curve.csv").write_text("step,test_accuracy\n50,0.9\n")
    assert first_difference(a, b) == "the retraining wrote no curve.csv"


def pretrained_config(method="vanilla"):
    return get_config("smoke", "mnist", method, n_train=64, n_test=16, epochs=1,
                      pretrain_epochs=2, eval_attacks=("fgsm",), eval_batch_size=16)


def committed_pretraining():
    """A method trained from a shared pre-training that a session's end stopped after its
    first epoch; then every model is deleted, as on a fresh clone. Returns the committed
    pre-training's files."""
    cfg = pretrained_config()
    pre = training.pretrain_config(cfg)
    assert train(pre, verbose=0, stop_after=1) is None
    ev.evaluate(cfg, verbose=0)  # resumes the pre-training, then trains the method from it
    assert runs.read_json(runs.results_dir(pre) / "config.json")["resumed_after"] == [1]
    shutil.rmtree(runs.run_dir(cfg).parents[1])
    return pre, {p.name: p.read_bytes() for p in runs.results_dir(pre).iterdir()}


def test_a_shared_pretraining_is_reproduced_not_replaced(fake_data):
    pre, files = committed_pretraining()
    cfg = pretrained_config()
    assert reproduce(cfg)["identical"]  # the pre-training first, stopped where it was
    assert runs.read_json(runs.run_dir(pre) / "reproduced.json")["resumed_after"] == [1]
    shutil.rmtree(runs.run_dir(cfg).parents[1])
    # a new method of the seed, on a fresh clone, starts from the committed pre-training
    other = pretrained_config("pure_pgd")
    train(other, verbose=0)
    assert (runs.run_dir(pre) / "reproduced.json").exists()
    info = runs.read_json(runs.results_dir(other) / "config.json")["pretrain"]
    assert info["reproduced"] is True and info["epochs"] == 2
    assert {p.name: p.read_bytes() for p in runs.results_dir(pre).iterdir()} == files


def test_a_shared_pretraining_that_differs_stops_the_runs_that_would_start_from_it(fake_data):
    pre, _ = committed_pretraining()
    hist = runs.results_dir(pre) / "history.csv"
    hist.write_text(hist.read_text().replace("\n1,", "\n1,9", 1))
    files = {p.name: p.read_bytes() for p in runs.results_dir(pre).iterdir()}
    other = pretrained_config("pure_pgd")
    with pytest.raises(GandefError, match="row 1, loss.*move .*vanilla-pretrain/seed0 away"):
        train(other, verbose=0)
    assert not runs.run_dir(other).joinpath("train.json").exists()
    assert not runs.run_dir(pre).exists()  # moved aside: no run can start from it
    assert {p.name: p.read_bytes() for p in runs.results_dir(pre).iterdir()} == files
