"""Images/s of three augmentation pipelines at the lecture's settings, side by side in one run.

1. legacy: keras.src.legacy.preprocessing.image.ImageDataGenerator(...).flow(x) (SciPy, per image);
2. cnnlab: cnnlab.augment.ImageDataGenerator(...).flow(x) (one fused transform per batch);
3. bound: one bare projective resampling of the batch with random matrices, nothing else:
   cnnlab's own XLA resampler (the one its generator uses), and TensorFlow's
   ImageProjectiveTransformV3 for reference.

224x224 RGB real photos (Oxford pets), batch 32, after warm-up, median of several repeats.
Prints the ratios cnnlab/legacy (target >= 5) and cnnlab/bound (target >= 0.8, against the
faster of the two bare resamplers).
Run: CNNLAB_DATA=../shared/data python benchmarks/augment.py [--repeats 5] [--batches 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras.src.legacy.preprocessing.image import ImageDataGenerator as LegacyGenerator  # noqa: E402
from PIL import Image  # noqa: E402

import cnnlab  # noqa: E402
from cnnlab.augment import ImageDataGenerator  # noqa: E402
from cnnlab.augment.transform import resample  # noqa: E402

LECTURE = dict(
    rescale=1.0 / 255,
    rotation_range=40,
    width_shift_range=0.2,
    height_shift_range=0.2,
    shear_range=0.2,
    zoom_range=0.2,
    horizontal_flip=True,
    channel_shift_range=9,
    fill_mode="nearest",
)
BATCH = 32


def photos(count: int = 64) -> np.ndarray:
    folder = cnnlab.load_pets("subset")
    chosen = folder.files[:: max(1, len(folder.files) // count)][:count]
    return np.stack([np.asarray(Image.open(p).convert("RGB").resize((224, 224)), dtype="float32") for p in chosen])


def seconds_per_batch(next_batch, batches: int) -> float:
    start = time.perf_counter()
    for _ in range(batches):
        batch = next_batch()
    np.asarray(batch)  # make sure the work is finished
    return (time.perf_counter() - start) / batches


def images_per_second(pipelines: dict, batches: int, repeats: int) -> dict:
    """Median images/s of each pipeline; repeats are interleaved so that drift on a shared
    machine hits every pipeline alike."""
    for next_batch in pipelines.values():
        next_batch()  # warm-up: tracing, XLA compilation, allocations
    times = {name: [] for name in pipelines}
    for _ in range(repeats):
        for name, next_batch in pipelines.items():
            times[name].append(seconds_per_batch(next_batch, batches))
    return {name: BATCH / statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--no-channel-shift", action="store_true", help="drop channel_shift_range=9 from the settings")
    args = parser.parse_args()
    if args.no_channel_shift:
        LECTURE.pop("channel_shift_range")
    x = photos()
    legacy = iter(LegacyGenerator(**LECTURE).flow(x, batch_size=BATCH, seed=0))
    ours = ImageDataGenerator(**LECTURE).flow(x, batch_size=BATCH, seed=0)
    ours_index = iter(range(10**9))

    def cnnlab_batch():
        return ours[next(ours_index) % len(ours)]

    rng = np.random.default_rng(0)
    x_tensor = tf.constant(x)

    def random_batch():
        angle = rng.uniform(-0.7, 0.7, BATCH)
        projective = np.zeros((BATCH, 8), "float32")
        projective[:, 0], projective[:, 1], projective[:, 3], projective[:, 4] = (
            np.cos(angle),
            -np.sin(angle),
            np.sin(angle),
            np.cos(angle),
        )
        projective[:, 2], projective[:, 5] = 20.0, -10.0
        return tf.gather(x_tensor, rng.choice(len(x), BATCH, replace=False)), projective

    def bound_batch():
        return resample(*random_batch(), "nearest", 0.0)

    def tensorflow_op_batch():
        images, projective = random_batch()
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=images,
            transforms=projective,
            output_shape=[224, 224],
            fill_value=0.0,
            interpolation="BILINEAR",
            fill_mode="NEAREST",
        )

    results = images_per_second(
        {"legacy": lambda: next(legacy), "cnnlab": cnnlab_batch, "bound": bound_batch, "tf-op": tensorflow_op_batch},
        args.batches,
        args.repeats,
    )
    bound = max(results["bound"], results["tf-op"])
    print(
        f"224x224x3, batch {BATCH}, {args.repeats} repeats of {args.batches} batches, {os.cpu_count()} CPU cores, TF {tf.__version__}"
    )
    for name, rate in results.items():
        print(f"  {name:<7} {rate:8.1f} images/s")
    print(f"cnnlab / legacy = {results['cnnlab'] / results['legacy']:.2f}  (target >= 5)")
    print(f"cnnlab / bound  = {results['cnnlab'] / bound:.2f}  (target >= 0.8)")


if __name__ == "__main__":
    main()
