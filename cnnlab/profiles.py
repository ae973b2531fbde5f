"""The two run profiles: ``smoke`` (small real data, CPU, minutes) and ``full`` (real sizes, GPU).

Choose with ``CNNLAB_PROFILE=smoke`` or ``CNNLAB_PROFILE=full``. Without it, the profile is
``full`` when TensorFlow sees a GPU and ``smoke`` otherwise.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Profile:
    """Data sizes and training lengths for one profile.

    ``None`` for a sample count means "all of it".
    """

    name: str
    mnist_train_samples: int | None
    mnist_epochs: int
    cifar10_variant: str
    cifar10_epochs: int
    pets_variant: str
    pets_epochs: int
    batch_size: int
    min_convnet_accuracy: float
    min_mlp_accuracy: float

    def as_dict(self) -> dict:
        return asdict(self)


PROFILES = {
    "smoke": Profile(
        name="smoke",
        mnist_train_samples=30_000,
        mnist_epochs=3,
        cifar10_variant="subset",
        cifar10_epochs=8,
        pets_variant="subset",
        pets_epochs=2,
        batch_size=128,
        min_convnet_accuracy=0.97,
        min_mlp_accuracy=0.93,
    ),
    "full": Profile(
        name="full",
        mnist_train_samples=None,
        mnist_epochs=10,
        cifar10_variant="full",
        cifar10_epochs=30,
        pets_variant="full",
        pets_epochs=10,
        batch_size=128,
        min_convnet_accuracy=0.99,
        min_mlp_accuracy=0.975,
    ),
}

HOW_TO_CHANGE = "set CNNLAB_PROFILE=smoke or CNNLAB_PROFILE=full before starting Python (or the notebook kernel)"


def get_profile(name: str | None = None) -> Profile:
    """The profile called ``name``, else ``$CNNLAB_PROFILE``, else full on a GPU and smoke on a CPU."""
    source = "argument `name`"
    if name is None:
        name = os.environ.get("CNNLAB_PROFILE", "").strip() or None
        source = "CNNLAB_PROFILE"
    if name is None:
        from cnnlab.runtime import gpus

        return PROFILES["full" if gpus() else "smoke"]
    if name not in PROFILES:
        raise ValueError(f"{source} must be one of {sorted(PROFILES)}, got {name!r}")
    return PROFILES[name]
