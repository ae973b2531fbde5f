"""Process a large batch a few images at a time, inside one XLA program, on a CPU.

The legacy channel shift (and brightness) clip every image to the min and max of the image
*after* resampling. An exact implementation must therefore resample the image, reduce it, and
then go over it again. For a batch of 32 photos of 224x224 the resampled batch is 19 MB: it
no longer fits in the CPU's cache, so the reduction and the clip each read it back from main
memory. Done in chunks of a few images (about 4.8 MB), the resampled pixels are still in the
cache when they are reduced and clipped, which is 10-20% faster on a 2-core CPU
(``benchmarks/channel_shift.py``). The result is the same, since every image is processed on
its own either way (up to how XLA rounds the rotation's sine and cosine in each program:
about 1e-5 on a [0, 1] scale).

On a GPU, or when there is no reduction to do, or when the batch is small, the batch is
processed whole.
"""

from __future__ import annotations

import tensorflow as tf

CHUNK_PIXELS = 8 * 224 * 224  # about 4.8 MB of float32 RGB: fits in a typical L3 cache


def cache_sized_chunk(settings, batch: int | None, height: int, width: int) -> int | None:
    """Images per chunk, or None to process the batch whole."""
    needs_reduction = settings.channel_shift_range > 0 or settings.brightness_range is not None
    if not needs_reduction or batch is None or tf.config.list_logical_devices("GPU"):
        return None
    chunk = max(1, CHUNK_PIXELS // (height * width))
    return chunk if chunk < batch else None


def in_chunks(function, images, params: dict, chunk: int):
    """``function(images, params)``, which must keep the shape of ``images``, applied to
    consecutive chunks of ``chunk`` images.

    ``images`` is (N, H, W, C) with a static N; each entry of ``params`` has N rows. The batch
    is padded to a whole number of chunks (the last batch of an epoch), and the padding is
    dropped from the result.
    """
    batch = images.shape[0]
    chunks = -(-batch // chunk)
    padding = chunks * chunk - batch

    def split(tensor):
        if padding:
            tensor = tf.concat([tensor, tf.repeat(tensor[-1:], padding, axis=0)], axis=0)
        return tf.reshape(tensor, (chunks, chunk, *tensor.shape[1:]))

    image_chunks = split(images)
    param_chunks = {key: split(value) for key, value in params.items()}

    def step(index, output):
        result = function(image_chunks[index], {key: value[index] for key, value in param_chunks.items()})
        return index + 1, tf.tensor_scatter_nd_update(output, [[index]], result[None])

    empty = tf.zeros(image_chunks.shape, images.dtype)  # augmentation keeps the shape
    _, output = tf.while_loop(lambda index, _: index < chunks, step, (tf.constant(0), empty))
    return tf.reshape(output, (chunks * chunk, *images.shape[1:]))[:batch]
