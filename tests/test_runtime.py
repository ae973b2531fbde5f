"""Profiles, seeding, devices and the distribution strategy."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import cnnlab
from cnnlab import profiles, runtime


def test_default_profile_follows_the_device(monkeypatch):
    monkeypatch.delenv("CNNLAB_PROFILE", raising=False)
    monkeypatch.setattr(runtime, "gpus", lambda: [])
    assert cnnlab.get_profile().name == "smoke"
    monkeypatch.setattr(runtime, "gpus", lambda: ["GPU:0"])
    assert cnnlab.get_profile().name == "full"


def test_profile_from_environment_and_bad_value(monkeypatch):
    monkeypatch.setenv("CNNLAB_PROFILE", "full")
    assert cnnlab.get_profile().mnist_train_samples is None  # all 60,000
    monkeypatch.setenv("CNNLAB_PROFILE", "fast")
    with pytest.raises(ValueError, match="CNNLAB_PROFILE must be one of.*'fast'"):
        cnnlab.get_profile()


def test_smoke_is_smaller_than_full():
    smoke, full = profiles.PROFILES["smoke"], profiles.PROFILES["full"]
    assert smoke.mnist_train_samples < 60_000 and smoke.mnist_epochs < full.mnist_epochs
    assert (smoke.cifar10_variant, full.cifar10_variant) == ("subset", "full")
    assert full.min_convnet_accuracy == 0.99 and smoke.min_convnet_accuracy == 0.97
    assert full.min_mlp_accuracy == 0.975


def draws():
    return np.random.rand(3)  # noqa: NPY002 - the global generator is what setup() must seed, tf.random.uniform((3,)).numpy(), keras.random.normal((3,)).numpy()


def test_setup_seeds_everything(capsys):
    cnnlab.setup(seed=7, profile="smoke", verbose=False)
    first = draws()
    cnnlab.setup(seed=7, profile="smoke", verbose=False)
    again = draws()
    cnnlab.setup(seed=8, profile="smoke", verbose=False)
    other = draws()
    for a, b, c in zip(first, again, other, strict=True):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)
    assert capsys.readouterr().out == ""


def test_setup_reports_and_gives_the_default_strategy_without_gpus(capsys):
    session = cnnlab.setup(seed=0, profile="smoke")
    out = capsys.readouterr().out
    assert "cnnlab profile: smoke" in out and "CNNLAB_PROFILE" in out
    assert ("CPU only" in out) == (not runtime.gpus())
    if len(runtime.gpus()) <= 1:
        assert not isinstance(session.strategy, tf.distribute.MirroredStrategy)
        assert session.strategy.num_replicas_in_sync == 1


def test_mixed_precision_is_gpu_only(monkeypatch):
    monkeypatch.setattr(runtime, "gpus", lambda: [])
    with pytest.warns(UserWarning, match="needs a GPU"):
        session = cnnlab.setup(mixed_precision=True, profile="smoke", verbose=False)
    assert session.mixed_precision is False
    assert keras.mixed_precision.global_policy().name == "float32"
