"""Public checks for lab 05, transfer learning and fine-tuning."""

from __future__ import annotations

import keras
import numpy as np

from cnnlab.checks.report import require, run_check
from cnnlab.models import convnet


def _count(weights) -> int:
    return int(sum(np.prod(w.shape) for w in weights))


def q1(feature_extractor, with_new_head) -> bool:
    """A frozen feature extractor cut from a pretrained ConvNet, and a new classification head."""

    def check(extract, add_head):
        pretrained = convnet(num_classes=5)
        extractor = extract(pretrained)
        require(
            isinstance(extractor, keras.Model),
            f"feature_extractor must return a keras.Model, got {type(extractor).__name__}",
        )
        require(
            tuple(extractor.output_shape[1:]) == (256,),
            f"the extractor outputs {extractor.output_shape[1:]}; cut the network after its 256-unit dense layer",
        )
        require(
            not extractor.trainable_weights,
            "the extractor still has trainable weights: freeze it (extractor.trainable = False)",
        )
        x = np.random.default_rng(0).random((2, 28, 28, 1)).astype("float32")
        inner = keras.Model(pretrained.inputs, pretrained.layers[-2].output)
        require(
            np.allclose(extractor(x), inner(x), atol=1e-5),
            "the extractor's features differ from the pretrained network's: reuse its layers, do not build new ones",
        )
        model = add_head(extractor, 5)
        require(
            tuple(model.output_shape[1:]) == (5,),
            f"the new model outputs {model.output_shape[1:]}; one probability per new class",
        )
        require(
            _count(model.trainable_weights) == 256 * 5 + 5,
            f"{_count(model.trainable_weights):,} trainable values; only the new head should train",
        )
        return "frozen features, one trainable head"

    return run_check("q1", check, feature_extractor, with_new_head)


def q2(unfreeze_top) -> bool:
    """Unfreeze the last n layers of a frozen base, keeping BatchNormalization frozen."""

    def check(unfreeze):
        base = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, include_top=False, weights=None)
        base.trainable = False
        unfreeze(base, 12)
        require(
            base.trainable,
            "set base.trainable = True first; a frozen model freezes all its layers whatever their own flag",
        )
        top, rest = base.layers[-12:], base.layers[:-12]
        require(all(not layer.trainable for layer in rest), "only the last n layers may be trainable")
        require(
            all(not layer.trainable for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)),
            "keep every BatchNormalization layer frozen",
        )
        require(
            all(layer.trainable for layer in top if not isinstance(layer, keras.layers.BatchNormalization)),
            "the last n layers (other than BatchNormalization) must be trainable",
        )
        require(base.trainable_weights, "nothing is trainable after unfreezing")
        return f"{_count(base.trainable_weights):,} trainable values in the top layers"

    return run_check("q2", check, unfreeze_top)
