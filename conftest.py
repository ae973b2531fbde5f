"""Environment for every test, the notebooks under solutions/ included (they run in kernels
started from other folders, so paths are made absolute here)."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
os.environ["CNNLAB_DATA"] = str(Path(os.environ.get("CNNLAB_DATA") or ROOT.parent / "shared" / "data").resolve())
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
os.environ.setdefault("MPLBACKEND", "Agg")  # headless: no test may need a display
