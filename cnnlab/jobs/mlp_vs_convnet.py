"""Train the lecture's MLP and ConvNet on MNIST and compare test accuracy and parameter count."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from cnnlab.data import load_mnist
from cnnlab.models import convnet, mlp
from cnnlab.runtime import setup

EXPECTED_PARAMS = {"mlp": 203_530, "convnet": 431_754}


def to_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, shuffle: bool, seed: int) -> tf.data.Dataset:
    """uint8 digits (N, 28, 28) -> batches of float32 (batch, 28, 28, 1) in [0, 1] with int labels."""
    data = tf.data.Dataset.from_tensor_slices((images[..., None], labels.astype("int32")))
    if shuffle:
        data = data.shuffle(len(images), seed=seed)
    return data.batch(batch_size).map(lambda x, y: (tf.cast(x, "float32") / 255.0, y)).prefetch(tf.data.AUTOTUNE)


def run(profile: str | None = None, seed: int = 0, verbose: int = 2) -> dict:
    """Train both models in the profile's budget and return their results.

    Returns
    -------
    dict
        ``{"mlp": {"params": ..., "test_accuracy": ...}, "convnet": {...}, "ok": bool}``;
        ``ok`` is False when the ConvNet misses the profile's accuracy target or a parameter
        count differs from the lecture's.
    """
    session = setup(seed=seed, profile=profile)
    settings = session.profile
    data = load_mnist()
    n_train = settings.mnist_train_samples or len(data.x_train)
    train = to_dataset(data.x_train[:n_train], data.y_train[:n_train], settings.batch_size, True, seed)
    test = to_dataset(data.x_test, data.y_test, 1000, False, seed)
    print(
        f"MNIST: training on {n_train:,} images for {settings.mnist_epochs} epoch(s), testing on all {len(data.x_test):,}"
    )
    results = {}
    for builder in (mlp, convnet):
        with session.strategy.scope():
            model = builder()
            model.compile(
                optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
            )
        model.fit(train, epochs=settings.mnist_epochs, verbose=verbose)
        _, accuracy = model.evaluate(test, verbose=0)
        results[model.name] = {"params": model.count_params(), "test_accuracy": float(accuracy)}
    print(f"\n{'model':<8} {'parameters':>11} {'test accuracy':>14}")
    for name, r in results.items():
        print(f"{name:<8} {r['params']:>11,} {r['test_accuracy']:>14.2%}")
    problems = [
        f"{n}: {r['params']:,} parameters, the lecture's model has {EXPECTED_PARAMS[n]:,}"
        for n, r in results.items()
        if r["params"] != EXPECTED_PARAMS[n]
    ]
    if results["convnet"]["test_accuracy"] < settings.min_convnet_accuracy:
        problems.append(
            f"convnet: test accuracy {results['convnet']['test_accuracy']:.2%} is below the {settings.name} target {settings.min_convnet_accuracy:.1%}"
        )
    for problem in problems:
        print(f"FAILED {problem}")
    if not problems:
        print(
            f"OK: ConvNet meets the {settings.name} target of {settings.min_convnet_accuracy:.1%}, parameter counts match the lecture"
        )
    results["ok"] = not problems
    return results
