"""Pretrained weights from other frameworks' files, read without those frameworks."""

from pathlib import Path

from cnnlab.weights.torch_checkpoint import CheckpointError, UnsafeCheckpointError, read_torch_checkpoint


def prepare_asset(name: str) -> list[Path]:
    """Files that ``cnnlab fetch NAME`` makes from an asset once it is found: the converted
    Keras weights for ``efficientnet-lite0``, nothing for the other assets."""
    if name == "efficientnet-lite0":
        from cnnlab.weights.efficientnet_lite0 import cached_weights_path

        return [cached_weights_path()]
    return []


__all__ = ["CheckpointError", "UnsafeCheckpointError", "prepare_asset", "read_torch_checkpoint"]
