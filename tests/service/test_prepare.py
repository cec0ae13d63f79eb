"""Checks made before a run starts: sizes, memory, the run's dtype, fields."""

from __future__ import annotations

import numpy as np
import pytest

from service import prepare as prepare_module
from service.config import ConfigError, build_config
from service.data import DataError, Standardizer, load_dataset, train_val_split
from service.prepare import MEMORY_COPIES, prepare

SEED = 0
NUM_SAMPLES = 30
NUM_FEATURES = 4
OVERFLOWING = 1e39  # finite in float64, inf in float32
# A pretend machine whose budget holds this many float32 parameters.
BUDGET_PARAMETERS = 1024


@pytest.fixture
def data_file(tmp_path):
    """Save x and y as an .npz and return its path."""

    def save(x=None, y=None, name="data.npz") -> str:
        rng = np.random.default_rng(SEED)
        if x is None:
            x = rng.normal(size=(NUM_SAMPLES, NUM_FEATURES))
        if y is None:
            y = np.arange(NUM_SAMPLES) % 3
        np.savez(tmp_path / name, x=x, y=y)
        return str(tmp_path / name)

    return save


@pytest.fixture
def small_machine(monkeypatch):
    """Pretend physical memory is just enough for BUDGET_PARAMETERS."""
    budget = BUDGET_PARAMETERS * 4 * MEMORY_COPIES
    physical = int(budget / prepare_module.MEMORY_SHARE)
    monkeypatch.setattr(prepare_module, "_physical_memory_bytes", lambda: physical)


def test_standardizer_is_fitted_on_the_training_split_only(data_file):
    rng = np.random.default_rng(SEED)
    x = rng.normal(loc=3.0, scale=2.0, size=(NUM_SAMPLES, NUM_FEATURES))
    path = data_file(x=x)
    config = build_config(dataset=path, standardize=True, val_fraction=0.3)

    plan = prepare(config)

    train, _ = train_val_split(load_dataset(path), 0.3, SEED)
    on_train = Standardizer.fit(train.x)
    on_all = Standardizer.fit(x)
    np.testing.assert_array_equal(plan.standardizer.mean, on_train.mean)
    np.testing.assert_array_equal(plan.standardizer.scale, on_train.scale)
    assert not np.allclose(plan.standardizer.mean, on_all.mean)
    assert not np.allclose(plan.standardizer.scale, on_all.scale)


def test_plan_holds_the_seeded_split_in_the_run_dtype(data_file):
    path = data_file()
    config = build_config(dataset=path, val_fraction=0.3, seed=7)

    plan = prepare(config)

    train, val = train_val_split(load_dataset(path), 0.3, 7)
    assert plan.train.x.dtype == np.float32
    np.testing.assert_array_equal(plan.train.x, train.x.astype(np.float32))
    np.testing.assert_array_equal(plan.val.x, val.x.astype(np.float32))
    np.testing.assert_array_equal(plan.val.y, val.y)


def test_value_overflowing_float32_is_refused_naming_its_place(data_file):
    x = np.random.default_rng(SEED).normal(size=(NUM_SAMPLES, NUM_FEATURES))
    x[7, 2] = OVERFLOWING
    path = data_file(x=x)

    with pytest.raises(DataError) as raised:
        prepare(build_config(dataset=path))

    assert raised.value.field == "dataset"
    assert "x at row 7, column 2: 1e+39 overflows float32" in str(raised.value)
    assert "--dtype float64" in str(raised.value)


def test_float_target_overflowing_float32_is_refused(data_file):
    y = np.zeros((NUM_SAMPLES, 2))
    y[4, 1] = -OVERFLOWING
    path = data_file(y=y)

    with pytest.raises(DataError, match=r"y at row 4, column 1: -1e\+39 overflows"):
        prepare(build_config(dataset=path))


def test_value_overflowing_float32_trains_in_float64(data_file):
    x = np.random.default_rng(SEED).normal(size=(NUM_SAMPLES, NUM_FEATURES))
    x[7, 2] = OVERFLOWING
    path = data_file(x=x)

    plan = prepare(build_config(dataset=path, dtype="float64"))

    assert np.all(np.isfinite(plan.train.x))


def test_network_too_large_for_memory_is_refused_naming_what_fits(
    data_file, small_machine
):
    # P = H (D + 1 + K) + K with D = 4 inputs and K = 3 classes.
    max_hidden = (BUDGET_PARAMETERS - 3) // (NUM_FEATURES + 1 + 3)
    path = data_file()

    with pytest.raises(ConfigError) as raised:
        prepare(build_config(dataset=path, hidden=max_hidden + 1))

    assert raised.value.field == "hidden"
    assert f"hidden up to {max_hidden:,} fits" in str(raised.value)
    assert prepare(build_config(dataset=path, hidden=max_hidden)).spec.hidden == (
        max_hidden
    )


def test_oversized_hidden_layer_from_an_init_file_is_reported_as_init(
    data_file, small_machine, tmp_path
):
    hidden = BUDGET_PARAMETERS
    weights = tmp_path / "init.npz"
    np.savez(
        weights,
        W1=np.zeros((hidden, NUM_FEATURES)),
        b1=np.zeros(hidden),
        W2=np.zeros((3, hidden)),
        b2=np.zeros(3),
    )

    with pytest.raises(ConfigError, match="makes") as raised:
        prepare(build_config(dataset=data_file(), init=str(weights)))

    assert raised.value.field == "init"


@pytest.mark.parametrize(
    ("W1", "W2"),
    [((0, NUM_FEATURES), (3, 0)), ((5, 0), (3, 5)), ((5, NUM_FEATURES), (0, 5))],
    ids=["no-hidden", "no-inputs", "no-outputs"],
)
def test_init_file_with_an_empty_layer_is_refused_as_init(data_file, tmp_path, W1, W2):
    weights = tmp_path / "init.npz"
    np.savez(
        weights,
        W1=np.zeros(W1),
        b1=np.zeros(W1[0]),
        W2=np.zeros(W2),
        b2=np.zeros(W2[0]),
    )

    with pytest.raises(DataError) as raised:
        prepare(build_config(dataset=data_file(), init=str(weights)))

    assert raised.value.field == "init"


def test_output_activation_that_does_not_suit_the_loss_is_named(data_file):
    config = build_config(
        dataset=data_file(), loss="cross_entropy", output_activation="sigmoid"
    )

    with pytest.raises(ConfigError, match="needs output activation softmax") as raised:
        prepare(config)

    assert raised.value.field == "output_activation"
