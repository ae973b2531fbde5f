"""The five labs and where their notebooks live."""

from __future__ import annotations

import os
from pathlib import Path

# lab number -> (notebook stem, short name used by `cnnlab run`)
LABS = {
    "01": ("01_convolutions", "convolutions"),
    "02": ("02_mlp_vs_convnet", "mlp-vs-convnet"),
    "03": ("03_vgg_and_classics", "vgg"),
    "04": ("04_training_and_regularization", "regularization"),
    "05": ("05_transfer_learning", "transfer-learning"),
}


# What each lab reads (smoke profile), for `cnnlab fetch`: the loaders its notebook and its
# hidden tests call. Used by the Colab bootstrap cell and the Gradescope package;
# tests/grading/test_gradescope_package.py checks it against the notebooks.
LAB_ASSETS = {
    "01": ("pets-subset",),  # load_sample_image: photographs of the pets subset
    "02": ("mnist",),
    "03": ("cifar10-subset",),
    "04": ("mnist", "cifar10-subset", "pets-subset"),
    "05": ("pets-subset", "imagenet-class-index", "efficientnet-lite0"),
}


def project_root() -> Path:
    """The folder that holds ``solutions/`` and ``labs/``: ``$CNNLAB_PROJECT``, else the current
    folder or one of its parents, else the checkout this package was installed from."""
    candidates = []
    if os.environ.get("CNNLAB_PROJECT"):
        candidates.append(Path(os.environ["CNNLAB_PROJECT"]))
    here = Path.cwd().resolve()
    candidates += [here, *here.parents, Path(__file__).resolve().parents[2]]
    for folder in candidates:
        if (folder / "solutions").is_dir() and (folder / "labs").is_dir():
            return folder
    raise FileNotFoundError(
        "cannot find the course folder (with solutions/ and labs/): run from the cnnlab checkout or set CNNLAB_PROJECT"
    )


def resolve_lab(name: str) -> str:
    """Accept "02", "2", "02_mlp_vs_convnet" or "mlp-vs-convnet"; return the lab number."""
    for number, (stem, short) in LABS.items():
        if name in (number, number.lstrip("0"), stem, short):
            return number
    known = ", ".join(f"{n} ({short})" for n, (_, short) in LABS.items())
    raise ValueError(f"unknown lab {name!r}; labs are: {known}")


def lab_notebook(name: str, kind: str = "solutions") -> Path:
    """Path of a lab's notebook in ``solutions/`` or ``labs/``."""
    if kind not in ("solutions", "labs"):
        raise ValueError(f"`kind` must be 'solutions' or 'labs', got {kind!r}")
    return project_root() / kind / f"{LABS[resolve_lab(name)][0]}.ipynb"
