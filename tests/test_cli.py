"""The ``gradpool train`` command: bad input is refused, good input trains."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from service.cli import main
from service.config import build_config
from service.data import Standardizer
from service.prepare import prepare
from service.reference import reference_train
from service.weights import fold_standardizer
from workers.backprop import predict
from workers.network import NetworkSpec

REL_TOLERANCE = 1e-10


@pytest.fixture
def files(tmp_path):
    """Small data and weight files, good and bad, made by the test."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4))
    made = {}

    def save(name, **arrays):
        path = tmp_path / name
        np.savez(path, **arrays)
        made[name.split(".")[0]] = str(path)

    save("good.npz", x=x, y=rng.integers(0, 3, size=30))
    save("flat_x.npz", x=x[:, 0], y=np.zeros(30, dtype=int))
    save("short_y.npz", x=x, y=np.zeros(29, dtype=int))
    save("negative.npz", x=x, y=np.r_[np.zeros(29, dtype=int), -1])
    save("nan.npz", x=np.where(np.arange(4) == 2, np.nan, x), y=np.zeros(30, int))
    save("no_y.npz", x=x)
    save("regression.npz", x=x, y=rng.normal(size=(30, 2)))
    save(
        "bad_init.npz",
        W1=np.zeros((8, 5)),
        b1=np.zeros(8),
        W2=np.zeros((3, 8)),
        b2=np.zeros(3),
    )
    save("partial_init.npz", W1=np.zeros((8, 4)))
    save(
        "two_class_init.npz",
        W1=np.zeros((8, 4)),
        b1=np.zeros(8),
        W2=np.zeros((2, 8)),
        b2=np.zeros(2),
    )
    save("huge_label.npz", x=x, y=np.r_[np.zeros(29, dtype=int), 10**9])
    save("overflow.npz", x=np.where(np.arange(4) == 1, 1e39, x), y=np.arange(30) % 2)
    save(
        "empty_hidden_init.npz",
        W1=np.zeros((0, 4)),
        b1=np.zeros(0),
        W2=np.zeros((3, 0)),
        b2=np.zeros(3),
    )
    np.save(tmp_path / "array.npy", x)
    (tmp_path / "array.npy").rename(tmp_path / "array.npz")
    (tmp_path / "folder.npz").mkdir()
    (tmp_path / "words.csv").write_text("a,b,label\n1,2,0\n3,oops,1\n")
    (tmp_path / "latin1.csv").write_bytes("a,b\n1,0\ncaf\xe9,1\n".encode("latin-1"))
    (tmp_path / "unknown.yaml").write_text("epochs: 2\nlearning_rate: 0.1\n")
    (tmp_path / "yes.yaml").write_text("no-shuffle: 'yes'\n")
    (tmp_path / "list.yaml").write_text("- epochs\n- 2\n")
    for name in ("array.npz", "folder.npz", "words.csv", "latin1.csv"):
        made[name.split(".")[0]] = str(tmp_path / name)
    for name in ("unknown.yaml", "yes.yaml", "list.yaml"):
        made[name.split(".")[0]] = str(tmp_path / name)
    made["dir"] = str(tmp_path)
    return made


BAD_INPUTS = [
    (["--dataset", "mnist"], "--dataset", "neither a bundled data set"),
    (["--dataset", "{dir}/missing.npz"], "--dataset", "does not exist"),
    (["--dataset", "{flat_x}"], "--dataset", "x must be 2-D"),
    (["--dataset", "{short_y}"], "--dataset", "needs 30 rows"),
    (["--dataset", "{negative}"], "--dataset", "labels must be 0, 1, 2"),
    (["--dataset", "{nan}"], "--dataset", "x has nan at row 0, column 2"),
    (["--dataset", "{no_y}"], "--dataset", "lacks array 'y'"),
    (
        ["--dataset", "{words}"],
        "--dataset",
        "line 3, column 2 ('b'): 'oops' is not a number",
    ),
    (["--dataset", "{latin1}"], "--dataset", "is not UTF-8 text: line 3"),
    (["--dataset", "{array}"], "--dataset", "not an .npz archive"),
    (["--dataset", "{folder}"], "--dataset", "is a directory"),
    (["--dataset", "{huge_label}"], "--dataset", "label 1000000000 at row 29"),
    (["--dataset", "{overflow}"], "--dataset", "1e+39 overflows float32"),
    (
        ["--dataset", "{good}", "--target-column", "0"],
        "--target-column",
        "applies only to .csv",
    ),
    (
        ["--dataset", "{regression}", "--loss", "cross_entropy"],
        "--loss",
        "needs integer class labels",
    ),
    (["--lr", "-0.1"], "--lr", "got -0.1"),
    (["--lr", "0"], "--lr", "got 0.0"),
    (["--lr", "nan"], "--lr", "got nan"),
    (["--workers", "0"], "--workers", "at least 1; got 0"),
    (["--hidden", "0"], "--hidden", "at least 1; got 0"),
    (["--hidden", "2000000000"], "--hidden", "GiB for the run"),
    (["--epochs", "0"], "--epochs", "at least 1; got 0"),
    (["--batch-size", "-5"], "--batch-size", "at least 1; got -5"),
    (["--val-fraction", "1"], "--val-fraction", "below 1; got 1.0"),
    (["--optimizer", "sgd", "--amsgrad"], "--amsgrad", "applies to optimizer adam"),
    (["--optimizer", "sgd", "--nesterov"], "--nesterov", "needs momentum > 0"),
    (["--betas", "0.9", "1.5"], "--betas", "got 1.5"),
    (
        ["--dataset", "{good}", "--init", "{bad_init}"],
        "--init",
        "W1 in the file has shape (8, 5)",
    ),
    (
        ["--dataset", "{good}", "--init", "{partial_init}"],
        "--init",
        "lacks b1, W2, b2",
    ),
    (
        ["--dataset", "{good}", "--init", "{two_class_init}"],
        "--init",
        "2 outputs, but the data set has labels up to 2",
    ),
    (["--init", "{dir}/nothing.npz"], "--init", "does not exist"),
    (["--dataset", "{good}", "--init", "{array}"], "--init", "not an .npz archive"),
    (
        ["--dataset", "{good}", "--init", "{empty_hidden_init}"],
        "--init",
        "at least one hidden unit",
    ),
    (["--config", "{yes}"], "--no-shuffle", "must be true or false; got 'yes'"),
    (["--config", "{list}"], "--config", "holds a list"),
    (["--config", "{unknown}"], "--config", "unknown option 'learning_rate'"),
    (["--config", "{dir}/none.yaml"], "--config", "does not exist"),
    (["--save", "{dir}"], "--save", "is a directory"),
    (["--epochs", "ten"], "--epochs", "invalid int value: 'ten'"),
    (["--optimizer", "lbfgs"], "--optimizer", "invalid choice: 'lbfgs'"),
]


@pytest.mark.parametrize(
    ("arguments", "option", "reason"),
    BAD_INPUTS,
    ids=[" ".join(case[0]).replace("{", "").replace("}", "") for case in BAD_INPUTS],
)
def test_train_rejects_bad_input_with_one_line_naming_the_option(
    files, capsys, arguments, option, reason
):
    argv = ["train", *(a.format(**files) for a in arguments)]
    with pytest.raises(SystemExit) as exited:
        raise SystemExit(main(argv))
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert option in lines[0]
    assert reason in lines[0]


def test_console_script_exits_non_zero_on_bad_option(gradpool_command, clean_env):
    finished = subprocess.run(
        [*gradpool_command, "train", "--workers", "0"],
        capture_output=True,
        text=True,
        env=clean_env,
        timeout=120,
    )
    assert finished.returncode == 2
    assert "--workers" in finished.stderr


def test_train_digits_with_defaults_reaches_high_validation_accuracy(
    tmp_path, gradpool_command, clean_env
):
    summary = tmp_path / "summary.json"
    finished = subprocess.run(
        [
            *gradpool_command,
            "train",
            "--metrics-port",
            "0",
            "--dataset",
            "digits",
            "--workers",
            "2",
            "--summary",
            str(summary),
        ],
        capture_output=True,
        text=True,
        env=clean_env,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    report = json.loads(summary.read_text())
    assert report["val_accuracy"] >= 0.95
    assert report["epochs"] == 20
    assert report["steps"] == 20 * 23
    assert report["samples_per_second"] > 0
    assert "val_acc=" in finished.stderr
    assert finished.stdout.startswith("done epoch=20/20")


def test_saved_weights_equal_reference_run_folded_to_raw_inputs(tmp_path, run_train):
    rng = np.random.default_rng(1)
    initial = tmp_path / "init.npz"
    np.savez(
        initial,
        W1=rng.normal(size=(5, 13)),
        b1=rng.normal(size=5),
        W2=rng.normal(size=(3, 5)),
        b2=rng.normal(size=3),
    )
    saved = tmp_path / "final.npz"
    options = dict(
        dataset="wine",
        dtype="float64",
        init=str(initial),
        batch_size=100_000,
        shuffle=False,
        standardize=True,
        epochs=12,
        workers=3,
    )
    run_train(
        "--dataset",
        "wine",
        "--dtype",
        "float64",
        "--init",
        str(initial),
        "--batch-size",
        "100000",
        "--no-shuffle",
        "--standardize",
        "--epochs",
        "12",
        "--workers",
        "3",
        "--save",
        str(saved),
    )

    plan = prepare(build_config(**options))
    expected = fold_standardizer(
        plan.spec.unflatten(reference_train(plan)), plan.standardizer
    )
    with np.load(saved) as got:
        for name, value in expected._asdict().items():
            error = np.linalg.norm(got[name] - value) / np.linalg.norm(value)
            assert error < REL_TOLERANCE, name


def test_saved_weights_act_on_raw_inputs():
    rng = np.random.default_rng(2)
    x = rng.normal(loc=5.0, scale=3.0, size=(20, 6))  # (B, D)
    standardizer = Standardizer.fit(x)
    spec = NetworkSpec(inputs=6, hidden=4, outputs=3, dtype="float64")
    theta = rng.normal(size=spec.num_parameters)
    folded = spec.flatten(fold_standardizer(spec.unflatten(theta), standardizer))
    np.testing.assert_allclose(
        predict(spec, folded, x),
        predict(spec, theta, standardizer.apply(x)),
        rtol=1e-12,
    )


def test_config_file_supplies_options_and_command_line_wins(tmp_path, run_train):
    config = tmp_path / "run.yaml"
    config.write_text("dataset: iris\nepochs: 5\nbatch-size: 30\nlr: 0.01\n")
    summary = tmp_path / "summary.json"
    run_train(
        "--config",
        str(config),
        "--epochs",
        "2",
        "--summary",
        str(summary),
    )
    report = json.loads(summary.read_text())
    assert report["epochs"] == 2
    assert report["steps"] == 2 * 4
    assert report["config"]["lr"] == 0.01
    assert report["config"]["dataset"] == "iris"


def test_json_config_file_is_accepted(tmp_path, run_train):
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"dataset": "iris", "epochs": 1, "no_shuffle": True}))
    summary = tmp_path / "summary.json"
    run_train(
        "--config",
        str(config),
        "--summary",
        str(summary),
    )
    report = json.loads(summary.read_text())
    assert report["config"]["shuffle"] is False


def test_divergence_is_reported_in_one_line_and_nothing_is_saved(
    tmp_path, gradpool_command, ray_address
):
    saved = tmp_path / "never.npz"
    finished = subprocess.run(
        [
            *gradpool_command,
            "train",
            "--metrics-port",
            "0",
            "--ray-address",
            ray_address,
            "--dataset",
            "iris",
            "--optimizer",
            "sgd",
            "--lr",
            "1e30",
            "--loss",
            "mse",
            "--output-activation",
            "identity",
            "--batch-size",
            "1000",
            "--epochs",
            "50",
            "--save",
            str(saved),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 1
    errors = [line for line in finished.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, finished.stderr[-3000:]
    assert "training diverged" in errors[0]
    assert "non-finite at step" in errors[0]
    assert not saved.exists()
