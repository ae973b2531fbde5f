"""One call at the top of every notebook: seeds, devices, profile and distribution strategy."""

from __future__ import annotations

import os
import platform
import random
import shutil
import subprocess
import warnings
from dataclasses import dataclass

import numpy as np

from cnnlab.profiles import HOW_TO_CHANGE, Profile, get_profile
from cnnlab.tf_logging import quiet_stderr


def gpus() -> list:
    """The GPUs TensorFlow can see (an empty list on a CPU-only machine)."""
    import tensorflow as tf

    with quiet_stderr():  # the first look initialises CUDA, which logs an error on a machine without a GPU
        return tf.config.list_physical_devices("GPU")


def gpu_descriptions() -> list[str]:
    """ "NAME, MEMORY" for each GPU, from nvidia-smi when it is there, else TensorFlow's name."""
    if not gpus():
        return []
    if shutil.which("nvidia-smi"):
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=False,
        )
        lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
        if result.returncode == 0 and lines:
            return lines
    import tensorflow as tf

    return [
        tf.config.experimental.get_device_details(g).get("device_name", g.name) + ", memory unknown" for g in gpus()
    ]


def device_report() -> str:
    """One line naming the device(s) that will run the models."""
    descriptions = gpu_descriptions()
    if not descriptions:
        return f"CPU only ({os.cpu_count()} cores)"
    return f"{len(descriptions)} GPU(s): " + "; ".join(descriptions)


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and TensorFlow; optionally make TF ops deterministic (slower)."""
    import keras
    import tensorflow as tf

    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - students' notebooks use the legacy global generator
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


@dataclass
class Session:
    """What :func:`setup` chose. ``strategy.scope()`` wraps model building for multi-GPU runs."""

    profile: Profile
    seed: int
    device: str
    strategy: object
    mixed_precision: bool

    def report(self) -> str:
        import keras
        import tensorflow as tf

        return "\n".join(
            [
                f"cnnlab profile: {self.profile.name}  (to change: {HOW_TO_CHANGE})",
                f"device: {self.device}",
                f"Python {platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}",
                f"seed: {self.seed}; replicas: {self.strategy.num_replicas_in_sync}; mixed precision: {'on' if self.mixed_precision else 'off'}",
            ]
        )


def setup(
    seed: int = 0,
    profile: str | None = None,
    deterministic: bool = False,
    mixed_precision: bool = False,
    verbose: bool = True,
) -> Session:
    """Prepare a notebook or script: seed, configure GPUs, pick the profile and strategy.

    Parameters
    ----------
    seed : int
        Seeds Python's ``random``, NumPy and TensorFlow.
    profile : {"smoke", "full"}, optional
        Default: ``$CNNLAB_PROFILE``, else full with a GPU and smoke without.
    deterministic : bool
        Enable TensorFlow's deterministic ops (same results run to run, somewhat slower).
    mixed_precision : bool
        Use float16 compute on a GPU (opt-in). Without a GPU it is left off, with a warning.
    verbose : bool
        Print the report (profile, device, versions).

    Returns
    -------
    Session
        ``.profile``, ``.strategy`` (MirroredStrategy with several GPUs, the default
        strategy otherwise), ``.device`` and ``.report()``.
    """
    import keras
    import tensorflow as tf

    for gpu in gpus():
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: growth must be set before first use
            pass
    seed_everything(seed, deterministic)
    chosen = get_profile(profile)
    use_mixed = bool(mixed_precision and gpus())
    if mixed_precision and not use_mixed:
        warnings.warn("mixed_precision=True needs a GPU; none is visible, so it stays off", stacklevel=2)
    keras.mixed_precision.set_global_policy("mixed_float16" if use_mixed else "float32")
    strategy = tf.distribute.MirroredStrategy() if len(gpus()) > 1 else tf.distribute.get_strategy()
    session = Session(chosen, seed, device_report(), strategy, use_mixed)
    if verbose:
        print(session.report())
    return session
