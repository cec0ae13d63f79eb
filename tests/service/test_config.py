"""Training settings: types, configuration files and the fields errors name."""

from __future__ import annotations

import json
import math
import re

import pytest

from service.config import ConfigError, build_config, load_config_file
from service.optimizers import OptimizerConfig, SettingError


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_yaml_reads_exponent_numbers_as_floats(tmp_path):
    # YAML 1.1 reads 1e-3 (no decimal point) as a string.
    path = write(tmp_path, "run.yaml", "lr: 1e-3\neps: 1e-8\nbetas: [0.9, 9.99e-1]\n")

    config = build_config(**load_config_file(path))

    assert config.lr == 1e-3
    assert config.eps == 1e-8
    assert config.betas == (0.9, 0.999)


def test_yaml_nan_string_reaches_the_range_check(tmp_path):
    path = write(tmp_path, "run.yaml", "lr: nan\n")
    settings = load_config_file(path)

    with pytest.raises(ConfigError, match="got nan") as raised:
        build_config(**settings)

    assert math.isnan(settings["lr"])
    assert raised.value.field == "lr"


def test_yaml_integer_target_column_becomes_a_column_index(tmp_path):
    path = write(tmp_path, "run.yaml", "target_column: 2\n")

    assert build_config(**load_config_file(path)).target_column == "2"


@pytest.mark.parametrize(
    ("text", "kind"),
    [("- epochs\n- 5\n", "list"), ("epochs\n", "str"), ("5\n", "int")],
)
def test_config_file_that_is_not_a_mapping_is_refused(tmp_path, text, kind):
    path = write(tmp_path, "run.yaml", text)

    with pytest.raises(ConfigError, match=f"holds a {kind} .*mapping") as raised:
        load_config_file(path)

    assert raised.value.field == "config"


def test_empty_config_file_sets_nothing(tmp_path):
    assert load_config_file(write(tmp_path, "run.yaml", "")) == {}


@pytest.mark.parametrize("key", ["no-shuffle", "no_shuffle"])
def test_no_shuffle_in_a_file_turns_shuffling_off(tmp_path, key):
    path = write(tmp_path, "run.json", json.dumps({key: True}))

    assert load_config_file(path) == {"shuffle": False}


def test_bad_no_shuffle_is_reported_under_its_own_name(tmp_path):
    path = write(tmp_path, "run.yaml", "no-shuffle: 'yes'\n")

    with pytest.raises(ConfigError, match="true or false; got 'yes'") as raised:
        load_config_file(path)

    assert raised.value.field == "no_shuffle"
    assert path in str(raised.value)


def test_bad_value_in_a_file_names_the_file(tmp_path):
    path = write(tmp_path, "run.yaml", "epochs: ten\n")

    with pytest.raises(ConfigError, match="must be an integer; got 'ten'") as raised:
        load_config_file(path)

    assert raised.value.field == "epochs"
    assert path in str(raised.value)


def test_unknown_key_in_a_file_is_refused(tmp_path):
    path = write(tmp_path, "run.yaml", "learning_rate: 0.1\n")

    with pytest.raises(ConfigError, match="unknown option 'learning_rate'") as raised:
        load_config_file(path)

    assert raised.value.field == "config"


def test_unparsable_file_is_refused(tmp_path):
    path = write(tmp_path, "run.json", "{epochs: ")

    with pytest.raises(ConfigError, match="cannot parse") as raised:
        load_config_file(path)

    assert raised.value.field == "config"


@pytest.mark.parametrize(
    ("betas", "shown"),
    [
        ((0.9, "x"), "'x'"),
        ((0.9, 1.5), "1.5"),
        ((0.9,), "(0.9,)"),
        ((0.9, None), "None"),
    ],
    ids=["not-a-number", "out-of-range", "one-value", "none"],
)
def test_bad_betas_are_reported_as_betas(betas, shown):
    with pytest.raises(ConfigError, match=re.escape(f"got {shown}")) as raised:
        build_config(betas=betas)

    assert raised.value.field == "betas"


@pytest.mark.parametrize(
    ("settings", "field", "reason"),
    [
        ({"lr": -0.1}, "lr", "must be a finite number > 0; got -0.1"),
        ({"eps": math.inf}, "eps", "must be a finite number >= 0; got inf"),
        (
            {"optimizer": "sgd", "nesterov": True},
            "nesterov",
            "needs momentum > 0 and dampening 0",
        ),
        (
            {"optimizer": "rmsprop", "alpha": 1.0},
            "alpha",
            "must be a finite number in [0, 1); got 1.0",
        ),
    ],
)
def test_optimizer_errors_name_the_setting(settings, field, reason):
    with pytest.raises(ConfigError) as raised:
        build_config(**settings)

    assert raised.value.field == field
    assert str(raised.value).startswith(reason)


def test_optimizer_setting_error_carries_its_field():
    with pytest.raises(SettingError) as raised:
        OptimizerConfig(name="adam", lr=0.01, betas=(0.9, 2.0))

    assert raised.value.field == "betas"
    assert str(raised.value) == f"betas {raised.value.reason}"


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("epochs", 2.5, "must be an integer"),
        ("epochs", True, "must be an integer"),
        ("standardize", "yes", "must be true or false"),
        ("lr", "fast", "must be a number; got 'fast'"),
        ("lr", True, "must be a number"),
        ("dataset", 3, "must be a string"),
        ("target_column", True, "must be a string"),
        ("learning_rate", 0.1, "is not a training option"),
    ],
)
def test_values_of_the_wrong_type_are_refused(name, value, reason):
    with pytest.raises(ConfigError, match=reason) as raised:
        build_config(**{name: value})

    assert raised.value.field == name
