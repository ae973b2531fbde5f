"""What the legacy channel shift costs on top of one resampling pass, in several formulations.

The legacy generator clips every shifted image to the min and max of the *transformed* image
(``apply_channel_shift``), so an exact implementation needs a reduction over the resampled
batch before it can write its output. This benchmark measures, side by side in one run, on a
fixed 224x224x3 batch of 32 with random rotations (the bare work of ``benchmarks/augment.py``):

- bound:     the bare XLA resampling (cnnlab.augment.transform.resample), nothing else;
- fused:     resampling, min/max, clip and rescale in one XLA program (what cnnlab does on a
             GPU and for small images);
- split:     XLA resampling, then TensorFlow's own (Eigen) min/max reductions, then an XLA clip;
- chunked:   one XLA program looping over chunks of 8 images, so that each chunk's
             resampled pixels are still in cache when they are reduced and clipped (what
             cnnlab.augment.chunks does for large images on a CPU);
- one-sided: one reduction instead of two (a positive shift can only cross the max, a negative
             one only the min), folded into the resampling program.

Every variant is checked to give exactly the fused result before it is timed.
Run: python benchmarks/channel_shift.py [--repeats 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from cnnlab.augment.transform import resample  # noqa: E402

BATCH, SIZE, CHUNK = 32, 224, 8


def _resampled(images, projective):
    return resample(images, projective, "nearest", 0.0)


def _extent(images):
    return tf.reduce_min(images, axis=(1, 2, 3), keepdims=True), tf.reduce_max(images, axis=(1, 2, 3), keepdims=True)


def _clip_and_rescale(images, shift, low, high):
    return tf.clip_by_value(images + shift[:, None, None, None], low, high) / 255.0


@tf.function(jit_compile=True)
def fused(images, projective, shift):
    resampled = _resampled(images, projective)
    return _clip_and_rescale(resampled, shift, *_extent(resampled))


clip_compiled = tf.function(_clip_and_rescale, jit_compile=True)


def split(images, projective, shift):
    resampled = _resampled(images, projective)
    return clip_compiled(resampled, shift, *_extent(resampled))  # the reductions run eagerly, in Eigen


@tf.function(jit_compile=True)
def chunked(images, projective, shift):
    chunks = BATCH // CHUNK
    image_chunks = tf.reshape(images, (chunks, CHUNK, SIZE, SIZE, 3))
    projective_chunks, shift_chunks = tf.reshape(projective, (chunks, CHUNK, 8)), tf.reshape(shift, (chunks, CHUNK))

    def step(index, output):
        resampled = _resampled(image_chunks[index], projective_chunks[index])
        clipped = _clip_and_rescale(resampled, shift_chunks[index], *_extent(resampled))
        return index + 1, tf.tensor_scatter_nd_update(output, [[index]], clipped[None])

    empty = tf.zeros((chunks, CHUNK, SIZE, SIZE, 3))
    _, output = tf.while_loop(lambda index, _: index < chunks, step, (0, empty))
    return tf.reshape(output, (BATCH, SIZE, SIZE, 3))


@tf.function(jit_compile=True)
def one_sided(images, projective, shift):
    sign = tf.where(shift < 0, -1.0, 1.0)[:, None, None, None]
    signed = sign * _resampled(images, projective)  # max of this is the max (shift > 0) or -min (shift < 0)
    limit = tf.reduce_max(signed, axis=(1, 2, 3), keepdims=True)
    return sign * tf.minimum(signed + tf.abs(shift)[:, None, None, None], limit) / 255.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--batches", type=int, default=8)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(0, 255, (BATCH, SIZE, SIZE, 3)).astype("float32"))
    angle = rng.uniform(-0.7, 0.7, BATCH)
    projective = np.zeros((BATCH, 8), "float32")
    projective[:, [0, 1, 3, 4]] = np.stack([np.cos(angle), -np.sin(angle), np.sin(angle), np.cos(angle)], axis=1)
    projective[:, 2], projective[:, 5] = 20.0, -10.0
    projective = tf.constant(projective)
    shift = tf.constant(rng.uniform(-9, 9, BATCH).astype("float32"))

    variants = {
        "bound": lambda: _resampled(images, projective),
        "fused": lambda: fused(images, projective, shift),
        "split": lambda: split(images, projective, shift),
        "chunked": lambda: chunked(images, projective, shift),
        "one-sided": lambda: one_sided(images, projective, shift),
    }
    reference = fused(images, projective, shift).numpy()
    for name in ("split", "chunked", "one-sided"):
        difference = np.abs(variants[name]().numpy() - reference).max()
        assert difference == 0.0, f"{name} differs from the fused result by {difference}"

    times = {name: [] for name in variants}
    for _ in range(args.repeats):  # interleaved, so that drift on a shared machine hits all alike
        for name, run in variants.items():
            start = time.perf_counter()
            for _ in range(args.batches):
                output = run()
            output.numpy()
            times[name].append((time.perf_counter() - start) / args.batches)
    bound = statistics.median(times["bound"])
    print(
        f"{SIZE}x{SIZE}x3, batch {BATCH}, {args.repeats} repeats of {args.batches} batches, {os.cpu_count()} CPU cores"
    )
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<10} {median * 1000:6.2f} ms/batch   bound / this = {bound / median:.2f}")


if __name__ == "__main__":
    main()
