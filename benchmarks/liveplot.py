"""Does LivePlot slow training? Epoch time of the same fit with and without it, in one run.

Two settings are measured against a plain fit:
- "static": LivePlot as it runs in scripts, CI, nbval and the grader (records numbers, draws
  one figure at the end);
- "live": the drawing LivePlot does in an interactive notebook, forced on (a figure rendered
  every epoch, min_interval_s=0), so the worst case is visible.

Run: CNNLAB_DATA=../shared/data python benchmarks/liveplot.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

import cnnlab  # noqa: E402
from cnnlab.viz import LivePlot  # noqa: E402


class ForcedLivePlot(LivePlot):
    """LivePlot's live branch without a notebook: render the figure each epoch."""

    def _draw_live(self):
        figure = cnnlab.viz.plot_history({"run": self.history}, metrics=[m for m in self.metrics if m in self.history])
        figure.canvas.draw()
        plt.close(figure)


def seconds_per_epoch(x, y, callbacks, epochs: int) -> float:
    keras.utils.set_random_seed(0)
    model = cnnlab.models.convnet()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:512], y[:512], epochs=1, verbose=0)  # warm-up: tracing
    start = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=128, validation_split=0.1, verbose=0, callbacks=callbacks)
    return (time.perf_counter() - start) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=6000)
    args = parser.parse_args()
    (x, y), _ = cnnlab.load_mnist()
    x = x[: args.samples, ..., None] / 255.0
    y = y[: args.samples]
    times = {"plain": [], "static": [], "live": []}

    def callbacks(name):
        if name == "plain":
            return []
        plot = ForcedLivePlot(min_interval_s=0.0) if name == "live" else LivePlot()
        plot.live = name == "live"
        return [plot]

    seconds_per_epoch(x, y, [], 1)  # warm-up of the whole process
    names = list(times)
    for repeat in range(args.repeats):  # interleaved and rotated, so drift hits all three alike
        for name in names[repeat % 3 :] + names[: repeat % 3]:
            times[name].append(seconds_per_epoch(x, y, callbacks(name), args.epochs))
    medians = {k: statistics.median(v) for k, v in times.items()}
    print(f"MNIST ConvNet, {args.samples} images/epoch, median of {args.repeats} x {args.epochs} epochs")
    for name, value in medians.items():
        print(f"  {name:<7} {value:.3f} s/epoch")
    print(f"static / plain = {medians['static'] / medians['plain']:.3f}")
    print(f"live   / plain = {medians['live'] / medians['plain']:.3f}")


if __name__ == "__main__":
    main()
