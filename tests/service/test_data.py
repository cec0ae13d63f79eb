"""Loading data sets, the label rule, the validation split and standardising."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from service.data import (
    MAX_CLASSES,
    MAX_CSV_CLASSES,
    DataError,
    Dataset,
    Standardizer,
    check_arrays,
    load_dataset,
    train_val_split,
)
from service.weights import read_weights

SEED = 0
NUM_SAMPLES = 40
NUM_FEATURES = 3


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def csv_text(targets: list[str], header: bool = True) -> str:
    """A CSV with two feature columns and the given target column last."""
    lines = ["a,b,label"] if header else []
    for row, target in enumerate(targets):
        lines.append(f"{row},{row * 0.5},{target}")
    return "\n".join(lines) + "\n"


def rename_npy_as_npz(tmp_path: Path) -> str:
    np.save(tmp_path / "array.npy", np.zeros((4, 3)))
    path = tmp_path / "array.npz"
    (tmp_path / "array.npy").rename(path)
    return str(path)


@pytest.fixture
def inputs() -> np.ndarray:
    return np.random.default_rng(SEED).normal(size=(NUM_SAMPLES, NUM_FEATURES))


# Bundled data sets.


@pytest.mark.parametrize(
    ("name", "samples", "features", "classes"),
    [
        ("digits", 1797, 64, 10),
        ("iris", 150, 4, 3),
        ("wine", 178, 13, 3),
        ("breast_cancer", 569, 30, 2),
    ],
)
def test_bundled_data_set_loads_with_its_shapes(name, samples, features, classes):
    dataset = load_dataset(name)

    assert dataset.x.shape == (samples, features)
    assert dataset.x.dtype == np.float64
    assert dataset.y.shape == (samples,)
    assert dataset.y.dtype == np.int64
    assert dataset.num_classes == classes


# .npz files.


def test_npz_with_integer_y_holds_labels(tmp_path, inputs):
    path = tmp_path / "labels.npz"
    np.savez(path, x=inputs, y=np.arange(NUM_SAMPLES) % 3)

    dataset = load_dataset(str(path))

    assert dataset.has_labels
    assert dataset.y.dtype == np.int64
    assert dataset.num_classes == 3


@pytest.mark.parametrize(
    ("y_shape", "expected"),
    [((NUM_SAMPLES,), (NUM_SAMPLES, 1)), ((NUM_SAMPLES, 2),) * 2],
)
def test_npz_with_float_y_holds_a_target_matrix(tmp_path, inputs, y_shape, expected):
    path = tmp_path / "targets.npz"
    y = np.random.default_rng(SEED).normal(size=y_shape)
    np.savez(path, x=inputs, y=y)

    dataset = load_dataset(str(path))

    assert not dataset.has_labels
    assert dataset.y.shape == expected
    np.testing.assert_array_equal(dataset.y.ravel(), y.ravel())


def test_npz_accepts_many_labels_when_there_are_as_many_samples(tmp_path):
    num_classes = MAX_CSV_CLASSES + 500
    path = tmp_path / "many.npz"
    np.savez(path, x=np.zeros((num_classes, 1)), y=np.arange(num_classes))

    assert load_dataset(str(path)).num_classes == num_classes


@pytest.mark.parametrize(
    "largest", [10**9, MAX_CSV_CLASSES, 2**63 + 5], ids=["1e9", "limit", "uint64"]
)
def test_npz_refuses_labels_naming_more_classes_than_allowed(tmp_path, largest):
    path = tmp_path / "ids.npz"
    y = np.zeros(NUM_SAMPLES, dtype=np.uint64)
    y[7] = largest
    np.savez(path, x=np.zeros((NUM_SAMPLES, 2)), y=y)

    with pytest.raises(DataError, match=f"label {largest} at row 7") as raised:
        load_dataset(str(path))

    assert raised.value.field == "dataset"
    assert f"at most {MAX_CSV_CLASSES:,}" in str(raised.value)


def test_labels_beyond_max_classes_are_refused_however_many_samples(tmp_path):
    num_samples = MAX_CLASSES + 1
    path = tmp_path / "ids.npz"
    np.savez(path, x=np.zeros((num_samples, 1)), y=np.arange(num_samples))

    with pytest.raises(DataError, match=f"at most {MAX_CLASSES:,}"):
        load_dataset(str(path))


# .csv files.


def test_csv_with_header_takes_the_last_column_as_target(tmp_path):
    path = write(tmp_path / "data.csv", csv_text(["0", "1", "2", "1"]))

    dataset = load_dataset(path)

    np.testing.assert_array_equal(dataset.x[:, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(dataset.y, [0, 1, 2, 1])


def test_csv_without_header_reads_every_line_as_data(tmp_path):
    path = write(tmp_path / "data.csv", csv_text(["0", "1", "1"], header=False))

    dataset = load_dataset(path)

    assert dataset.x.shape == (3, 2)
    np.testing.assert_array_equal(dataset.y, [0, 1, 1])


@pytest.mark.parametrize("target_column", ["0", "a", "-3"])
def test_csv_target_column_by_index_or_name(tmp_path, target_column):
    path = write(tmp_path / "data.csv", "a,b,c\n1,10,100\n0,20,200\n1,30,300\n")

    dataset = load_dataset(path, target_column)

    np.testing.assert_array_equal(dataset.y, [1, 0, 1])
    np.testing.assert_array_equal(dataset.x, [[10, 100], [20, 200], [30, 300]])


def test_csv_with_upper_case_suffix_takes_a_target_column(tmp_path):
    path = write(tmp_path / "DATA.CSV", "a,b\n1,5\n0,6\n")

    dataset = load_dataset(path, target_column="a")

    np.testing.assert_array_equal(dataset.y, [1, 0])


def test_csv_with_byte_order_mark_keeps_the_first_column_name(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfa,b\n1,0\n0,1\n")

    dataset = load_dataset(str(path), target_column="a")

    np.testing.assert_array_equal(dataset.y, [1, 0])


@pytest.mark.parametrize(
    ("targets", "num_classes"),
    [
        (["0", "1", "2", "1"], 3),
        (["1.0", "0.0", "1.0"], 2),
        (["0", "3", "1", "2"], 4),
    ],
    ids=["integers", "whole-floats", "as-many-classes-as-rows"],
)
def test_csv_small_whole_non_negative_numbers_are_labels(
    tmp_path, caplog, targets, num_classes
):
    path = write(tmp_path / "data.csv", csv_text(targets))

    with caplog.at_level(logging.INFO, logger="service.data"):
        dataset = load_dataset(path)

    assert dataset.has_labels
    assert dataset.num_classes == num_classes
    assert "read_as=labels" in caplog.text


@pytest.mark.parametrize(
    "targets",
    [
        ["100000", "101000", "129000", "100500"],
        ["0", "-1", "1", "0"],
        ["0.5", "1", "0", "1"],
        [str(MAX_CSV_CLASSES), *["0"] * (MAX_CSV_CLASSES + 5)],
        ["0", "4", "1", "2"],
        ["1e19", "2e19", "0", "1"],
    ],
    ids=["price", "negative", "fraction", "limit", "more-classes-than-rows", "1e19"],
)
def test_csv_other_target_columns_are_regression_targets(tmp_path, caplog, targets):
    path = write(tmp_path / "data.csv", csv_text(targets))

    with caplog.at_level(logging.INFO, logger="service.data"):
        dataset = load_dataset(path)

    assert not dataset.has_labels
    assert dataset.y.shape == (len(targets), 1)
    np.testing.assert_array_equal(dataset.y[:, 0], [float(t) for t in targets])
    assert "read_as=regression" in caplog.text


# The validation split.


@pytest.fixture
def numbered() -> Dataset:
    """A data set whose x records each sample's index."""
    x = np.arange(NUM_SAMPLES, dtype=float).reshape(-1, 1)
    return check_arrays("numbered", x, np.arange(NUM_SAMPLES) % 2)


def test_split_is_disjoint_and_covers_every_sample(numbered):
    train, val = train_val_split(numbered, 0.25, SEED)

    train_ids, val_ids = train.x[:, 0], val.x[:, 0]
    assert len(val_ids) == NUM_SAMPLES // 4
    assert not set(train_ids) & set(val_ids)
    assert sorted([*train_ids, *val_ids]) == list(range(NUM_SAMPLES))
    np.testing.assert_array_equal(train.y, train_ids % 2)


def test_split_with_the_same_seed_is_the_same(numbered):
    first = train_val_split(numbered, 0.25, SEED)[1]
    second = train_val_split(numbered, 0.25, SEED)[1]

    np.testing.assert_array_equal(first.x, second.x)


def test_split_with_another_seed_differs(numbered):
    first = train_val_split(numbered, 0.25, SEED)[1]
    other = train_val_split(numbered, 0.25, SEED + 1)[1]

    assert set(first.x[:, 0]) != set(other.x[:, 0])


def test_val_fraction_zero_trains_on_everything(numbered):
    train, val = train_val_split(numbered, 0.0, SEED)

    assert val is None
    assert train is numbered


@pytest.mark.parametrize("fraction", [-0.1, 1.0, float("nan"), 0.99])
def test_split_refuses_a_fraction_that_leaves_nothing(numbered, fraction):
    with pytest.raises(DataError) as raised:
        train_val_split(numbered, fraction, SEED)

    assert raised.value.field == "val_fraction"


# Standardising.


def test_standardizer_maps_each_feature_to_mean_zero_and_unit_scale():
    rng = np.random.default_rng(SEED)
    x = rng.normal(loc=[5.0, -3.0], scale=[2.0, 0.1], size=(200, 2))

    standardized = Standardizer.fit(x).apply(x)

    np.testing.assert_allclose(standardized.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(standardized.std(axis=0), 1.0, rtol=1e-12)


def test_standardizer_gives_constant_features_scale_one():
    x = np.array([[1.0, 7.0], [2.0, 7.0], [3.0, 7.0]])

    standardizer = Standardizer.fit(x)

    assert standardizer.scale[1] == 1.0
    np.testing.assert_array_equal(standardizer.apply(x)[:, 1], 0.0)


# Files that cannot be used.


def test_npy_file_named_npz_is_refused_as_a_data_set(tmp_path):
    path = rename_npy_as_npz(tmp_path)

    with pytest.raises(DataError, match="not an .npz archive") as raised:
        load_dataset(path)

    assert raised.value.field == "dataset"
    assert "shape (4, 3)" in str(raised.value)


def test_npy_file_named_npz_is_refused_as_initial_weights(tmp_path):
    path = rename_npy_as_npz(tmp_path)

    with pytest.raises(DataError, match="not an .npz archive") as raised:
        read_weights(path)

    assert raised.value.field == "init"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "cannot read"),
        (b"x,y\n1,2\n", "cannot read"),
        (b"PK\x03\x04 truncated", "cannot read"),
    ],
    ids=["empty", "text", "truncated-zip"],
)
def test_file_that_is_not_an_archive_is_refused(tmp_path, content, reason):
    path = tmp_path / "broken.npz"
    path.write_bytes(content)

    with pytest.raises(DataError, match=reason) as raised:
        load_dataset(str(path))

    assert raised.value.field == "dataset"


def test_npz_with_pickled_arrays_is_refused(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, x=np.zeros((2, 2)), y=np.array([{}, {}], dtype=object))

    with pytest.raises(DataError, match="cannot read .* as .npz") as raised:
        load_dataset(str(path))

    assert raised.value.field == "dataset"


@pytest.mark.parametrize("name", ["folder.npz", "folder.csv"])
def test_directory_is_refused_as_a_directory(tmp_path, name):
    (tmp_path / name).mkdir()

    with pytest.raises(DataError, match="is a directory") as raised:
        load_dataset(str(tmp_path / name))

    assert raised.value.field == "dataset"


def test_directory_is_refused_as_initial_weights(tmp_path):
    (tmp_path / "w.npz").mkdir()

    with pytest.raises(DataError, match="is a directory") as raised:
        read_weights(str(tmp_path / "w.npz"))

    assert raised.value.field == "init"


def test_file_name_too_long_is_refused(tmp_path):
    with pytest.raises(DataError, match="not a usable file name") as raised:
        load_dataset(str(tmp_path / ("x" * 5000 + ".csv")))

    assert raised.value.field == "dataset"


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(DataError, match="does not exist") as raised:
        load_dataset(str(tmp_path / "missing.csv"))

    assert raised.value.field == "dataset"


def test_csv_that_is_not_utf8_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("a,b\n1,0\ncaf\xe9,1\n".encode("latin-1"))

    with pytest.raises(DataError, match="not UTF-8 text: line 3 has byte 0xe9"):
        load_dataset(str(path))


def test_csv_with_an_oversized_field_is_refused(tmp_path):
    path = write(tmp_path / "long.csv", "a,b\n1," + "9" * 200_000 + "\n")

    with pytest.raises(DataError, match="cannot read .* as .csv") as raised:
        load_dataset(path)

    assert raised.value.field == "dataset"


def test_unreadable_csv_is_refused(tmp_path, monkeypatch):
    path = write(tmp_path / "secret.csv", "a,b\n1,0\n")

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    # Tests may run as root, which a chmod would not stop.
    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(DataError, match="cannot read .*: Permission denied"):
        load_dataset(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "a,b,label\n1,2,0\n3,oops,1\n",
            "line 3, column 2 ('b'): 'oops' is not a number; features must",
        ),
        (
            "a,b,label\n1,2,0\n3,4,cat\n",
            "line 3, column 3 ('label'): 'cat' is not a number; class names "
            "must be encoded as 0, 1, 2, ...",
        ),
        ("1,2,0\n3,,1\n", "line 2, column 2: '' is not a number"),
        ("a,b\n1,2\n3\n", "line 3 has 1 columns; expected 2"),
        ("a,b\n", "has a header but no data rows"),
        ("\n\n", "is empty"),
        ("a\n1\n", "needs at least two columns; got 1"),
    ],
    ids=["feature", "target", "empty-cell", "short-row", "header-only", "empty", "one"],
)
def test_bad_csv_content_is_refused_naming_the_place(tmp_path, text, message):
    path = write(tmp_path / "bad.csv", text)

    with pytest.raises(DataError) as raised:
        load_dataset(path)

    assert raised.value.field == "dataset"
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("target_column", "message"),
    [("price", "'price' is not a column"), ("5", "index 5 is outside the 2")],
)
def test_unknown_target_column_is_refused(tmp_path, target_column, message):
    path = write(tmp_path / "data.csv", "a,b\n1,0\n2,1\n")

    with pytest.raises(DataError, match=message) as raised:
        load_dataset(path, target_column)

    assert raised.value.field == "target_column"


@pytest.mark.parametrize("source", ["iris", "data.npz"])
def test_target_column_is_refused_for_other_than_csv(tmp_path, source):
    with pytest.raises(DataError, match="applies only to .csv") as raised:
        load_dataset(source, target_column="0")

    assert raised.value.field == "target_column"


def test_npz_without_y_is_refused_listing_its_arrays(tmp_path, inputs):
    path = tmp_path / "x_only.npz"
    np.savez(path, x=inputs, labels=np.zeros(NUM_SAMPLES))

    with pytest.raises(DataError, match=r"lacks array 'y'.*\['labels', 'x'\]"):
        load_dataset(str(path))


def test_float_y_without_columns_is_refused(tmp_path, inputs):
    path = tmp_path / "no_columns.npz"
    np.savez(path, x=inputs, y=np.zeros((NUM_SAMPLES, 0)))

    with pytest.raises(DataError, match="y has no columns"):
        load_dataset(str(path))
