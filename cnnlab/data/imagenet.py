"""The ImageNet class index, so that predictions of keras.applications models decode offline."""

from __future__ import annotations

import json
from functools import cache

import numpy as np

from cnnlab.data.store import locate


@cache
def imagenet_class_index() -> dict[int, tuple[str, str]]:
    """The 1,000 ImageNet classes: index -> (WordNet id, name), e.g. 285 -> ('n02124075', 'Egyptian_cat')."""
    raw = json.loads(locate("imagenet-class-index", "imagenet/imagenet_class_index.json").read_text())
    return {int(k): (v[0], v[1]) for k, v in raw.items()}


def decode_predictions(predictions, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """Decode ImageNet predictions like ``keras.applications.imagenet_utils.decode_predictions``.

    Parameters
    ----------
    predictions : array of shape (batch, 1000)
        Class probabilities from an ImageNet classifier.
    top : int
        How many classes to return per image.

    Returns
    -------
    list of lists of (wordnet_id, class_name, score), best first.
    """
    predictions = np.asarray(predictions)
    if predictions.ndim != 2 or predictions.shape[1] != 1000:
        raise ValueError(f"decode_predictions: `predictions` must have shape (batch, 1000), got {predictions.shape}")
    index = imagenet_class_index()
    decoded = []
    for row in predictions:
        best = np.argsort(row)[::-1][:top]
        decoded.append([(*index[int(i)], float(row[i])) for i in best])
    return decoded
