"""Distributed runs against the single-process reference, on a real Ray instance."""

from __future__ import annotations

import numpy as np
import pytest

from service.config import ConfigError, build_config
from service.parameter_server import NonFiniteError
from service.prepare import prepare
from service.reference import reference_train
from service.trainer import train

# Sync training differs from the reference only by summation order.
REL_TOLERANCE = 1e-10


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def iris_plan(**settings):
    # 0.25 of iris leaves 112 training samples: uneven slices for 3 workers.
    defaults = dict(
        dataset="iris",
        dtype="float64",
        val_fraction=0.25,
        standardize=True,
        hidden=8,
        seed=3,
    )
    return prepare(build_config(**{**defaults, **settings}))


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_full_batch_training_matches_single_process_reference(ray_address, workers):
    plan = iris_plan(batch_size=10_000, epochs=15, workers=workers, shuffle=False)
    result = train(plan)
    assert result.steps == 15
    assert relative_error(result.theta, reference_train(plan)) < REL_TOLERANCE


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_shuffled_minibatch_training_matches_reference_for_any_worker_count(
    ray_address, workers
):
    plan = iris_plan(
        batch_size=16, epochs=3, workers=workers, optimizer="sgd", momentum=0.9
    )
    result = train(plan)
    assert result.steps == 3 * 7
    assert relative_error(result.theta, reference_train(plan)) < REL_TOLERANCE


def test_training_moves_parameters_away_from_the_start(ray_address):
    plan = iris_plan(batch_size=32, epochs=2, workers=2)
    result = train(plan)
    assert relative_error(result.theta, plan.theta0) > 1e-3


def test_epoch_metrics_report_loss_falling_and_validation_figures(ray_address):
    plan = iris_plan(batch_size=16, epochs=8, workers=2, lr=0.01)
    seen = []
    result = train(plan, on_epoch=seen.append)
    assert [m.epoch for m in seen] == list(range(1, 9))
    assert seen[-1].train_loss < seen[0].train_loss
    assert seen[-1].val_loss is not None
    assert 0.0 <= seen[-1].val_accuracy <= 1.0
    assert result.final == seen[-1]


def test_step_callback_sees_every_step_in_order(ray_address):
    plan = iris_plan(batch_size=40, epochs=2, workers=2)
    steps = []
    train(plan, on_step=lambda stats: steps.append(stats.step))
    assert steps == list(range(1, 7))


def test_divergence_raises_non_finite_error_naming_the_step(ray_address):
    plan = iris_plan(
        batch_size=10_000,
        epochs=50,
        workers=2,
        optimizer="sgd",
        lr=1e30,
        loss="mse",
        output_activation="identity",
    )
    with pytest.raises(NonFiniteError) as caught:
        train(plan)
    assert caught.value.step >= 1
    assert "non-finite" in str(caught.value)


def test_training_refuses_more_workers_than_cluster_cpus(ray_address):
    plan = iris_plan(batch_size=16, epochs=1, workers=64)
    with pytest.raises(ConfigError, match="64 workers need 64 CPUs"):
        train(plan)


def test_checkpoints_arrive_every_interval_and_at_the_end(ray_address):
    plan = iris_plan(batch_size=16, epochs=2, workers=2)
    seen = []
    train(plan, checkpoint_interval=5, on_checkpoint=seen.append)
    assert [c.step for c in seen] == [5, 10, 14]


def test_resumed_run_ends_exactly_like_an_uninterrupted_one(ray_address):
    plan = iris_plan(batch_size=16, epochs=3, workers=2, optimizer="adam")
    whole = train(plan)
    checkpoints = []
    train(plan, checkpoint_interval=9, on_checkpoint=checkpoints.append)
    mid_epoch = checkpoints[0]
    assert mid_epoch.step == 9  # the third batch of the second epoch

    resumed = train(plan, resume=mid_epoch)
    np.testing.assert_array_equal(resumed.theta, whole.theta)
    assert resumed.epochs == whole.epochs


def test_stop_request_ends_the_run_with_a_checkpoint_between_steps(ray_address):
    plan = iris_plan(batch_size=16, epochs=50, workers=2)
    steps = []
    result = train(
        plan,
        on_step=lambda s: steps.append(s.step),
        should_stop=lambda: len(steps) >= 3,
    )
    assert result.stopped
    assert 3 <= result.steps < 50 * 7
    assert result.steps == steps[-1]
    resumed = train(plan, resume=result.checkpoint)
    assert resumed.steps == 50 * 7
    np.testing.assert_array_equal(resumed.theta, train(plan).theta)


def test_a_killed_worker_is_restarted_and_the_run_ends_unchanged(ray_address):
    import ray

    plan = iris_plan(batch_size=16, epochs=4, workers=2)
    restarts = []

    def on_step(stats):
        restarts.append(stats.worker_restarts)
        if stats.step == 5:
            # Kill the process, letting Ray restart the actor as it would
            # after a crash.
            worker = ray.get_actor("restart-test.worker-1")
            ray.kill(worker, no_restart=False)

    result = train(plan, on_step=on_step, name="restart-test")
    assert sum(restarts) == 1
    assert relative_error(result.theta, reference_train(plan)) < REL_TOLERANCE
