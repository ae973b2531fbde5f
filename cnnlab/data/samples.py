"""A few real photographs for the convolution and filter demos."""

from __future__ import annotations

import numpy as np
from PIL import Image

from cnnlab.data.store import locate

# Photos from the Oxford-IIIT Pet subset (CC BY-SA 4.0, Parkhi et al. 2012).
SAMPLE_IMAGES = {
    "cat": "oxford_pets_cats_vs_dogs/cats/Egyptian_Mau_140.jpg",
    "dog": "oxford_pets_cats_vs_dogs/dogs/shiba_inu_136.jpg",
    "siamese": "oxford_pets_cats_vs_dogs/cats/Siamese_17.jpg",
}


def load_sample_image(name: str = "cat", grayscale: bool = False) -> np.ndarray:
    """A real photograph as a uint8 array, (H, W, 3), or (H, W) when ``grayscale``.

    Parameters
    ----------
    name : {"cat", "dog", "siamese"}
    grayscale : bool
        Convert with ITU-R 601-2 luma (PIL's "L" mode).
    """
    if name not in SAMPLE_IMAGES:
        raise ValueError(f"load_sample_image: `name` must be one of {sorted(SAMPLE_IMAGES)}, got {name!r}")
    with Image.open(locate("pets-subset", SAMPLE_IMAGES[name])) as image:
        return np.asarray(image.convert("L" if grayscale else "RGB"))
