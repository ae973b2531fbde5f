"""The ``cnnlab`` command: ``doctor``, ``fetch`` and ``run``."""

from __future__ import annotations

import argparse
import os
import platform
import sys

# TensorFlow's C++ start-up chatter (CUDA probing, CPU flags) hides the command's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path

from cnnlab.data import manifest, store
from cnnlab.data.errors import DataError
from cnnlab.notebooks.catalog import LABS
from cnnlab.weights import prepare_asset

# What the smoke profile reads; without these (offline) the labs cannot run.
SMOKE_ASSETS = ("mnist", "cifar10-subset", "pets-subset", "imagenet-class-index", "efficientnet-lite0")


def doctor(_args) -> int:
    """Print versions, devices, profile, data folders and asset status; non-zero if something needed is broken."""
    problems = []
    print(f"Python      {platform.python_version()} ({sys.executable})")
    try:
        import keras
        import tensorflow as tf

        print(f"TensorFlow  {tf.__version__}\nKeras       {keras.__version__}")
        from cnnlab.runtime import device_report

        print(f"Devices     {device_report()}")
    except Exception as exc:  # a broken install is exactly what doctor must report
        problems.append(f"TensorFlow/Keras do not import: {exc}")
    try:
        from cnnlab.profiles import HOW_TO_CHANGE, get_profile

        profile = get_profile()
        origin = "from CNNLAB_PROFILE" if os.environ.get("CNNLAB_PROFILE") else "default for this device"
        print(f"Profile     {profile.name} ({origin}; to change: {HOW_TO_CHANGE})")
    except Exception as exc:
        problems.append(str(exc))
    data_dir = store.data_dir()
    if data_dir is None:
        print("Data        CNNLAB_DATA is not set (no read-only mirror)")
    elif not data_dir.is_dir():
        problems.append(f"CNNLAB_DATA={data_dir} is not a folder")
        print(f"Data        CNNLAB_DATA={data_dir} (MISSING)")
    else:
        print(f"Data        CNNLAB_DATA={data_dir} (read-only mirror)")
    print(f"Cache       {store.cache_dir()}")
    print(f"Downloads   {'disabled (CNNLAB_OFFLINE=1)' if store.offline() else 'allowed'}")
    from cnnlab.grading.isolation import describe

    print("Grading     " + "\n            ".join(describe()))
    print("Assets")
    for name, asset in manifest.assets().items():
        states = [store.file_status(entry) for entry in asset.files]
        invalid = [(p, s) for p, s in states if s.startswith("invalid")]
        found = sum(1 for _, s in states if s == "ok")
        if invalid:
            label = "INVALID"
            problems.extend(f"{name}: {p}: {s}" for p, s in invalid)
        elif found == len(states):
            label = "ok"
        else:
            label = "missing" if found == 0 else "partial"
            if store.offline() and name in SMOKE_ASSETS:
                problems.append(
                    f"{name} is {label} and downloads are disabled; run `cnnlab fetch {name}` online or set CNNLAB_DATA"
                )
        roots = {_root_label(p) for p, s in states if p is not None and s == "ok"}
        where = f" in {' and '.join(sorted(roots))}" if roots else ""
        kind = "subset" if asset.subset else "full"
        print(f"  {name:<22} {label:<8} {found}/{len(states)} files ({kind}){where}")
    if problems:
        print("\nPROBLEMS:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print("\nAll needed pieces are present.")
    return 0


def _root_label(path) -> str:
    data_dir = store.data_dir()
    if data_dir is not None and path.is_relative_to(data_dir):
        return "CNNLAB_DATA"
    return "cache" if path.is_relative_to(store.cache_dir()) else "an installed package"


def fetch(args) -> int:
    """Download (or find) and verify the named assets, so later runs need no network."""
    names = sorted(manifest.assets()) if args.all else args.names
    if not names:
        print("name at least one dataset, or --all; known: " + ", ".join(sorted(manifest.assets())), file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        try:
            paths = store.locate_asset(name) + prepare_asset(name)
        except (DataError, ValueError) as exc:
            failed += 1
            print(f"{name}: FAILED\n{exc}", file=sys.stderr)
            continue
        print(f"{name}: {len(paths)} file(s) ok")
    return 1 if failed else 0


def run(args) -> int:
    """Execute a lab's solution notebook top to bottom in a fresh kernel and report."""
    import time

    from nbclient.exceptions import CellExecutionError

    from cnnlab.notebooks.catalog import LABS, lab_notebook, resolve_lab
    from cnnlab.notebooks.execute import execute_notebook

    numbers = list(LABS) if args.lab == "all" else [resolve_lab(args.lab)]
    failed = 0
    for number in numbers:
        source = lab_notebook(number)
        output = (source.parent if args.inplace else Path(args.output_dir)) / source.name
        print(f"running {source} ...", flush=True)
        started = time.monotonic()
        try:
            notebook = execute_notebook(source, output, profile=args.profile)
        except CellExecutionError as error:
            failed += 1
            failed = output.with_name(output.stem + ".failed.ipynb") if args.inplace else output
            print(f"FAILED after {time.monotonic() - started:.0f} s; executed copy with the error: {failed}\n{error}")
            continue
        run_record = notebook.metadata["cnnlab"]["run"]
        print(
            f"ok: {len(notebook.cells)} cells in {run_record['seconds']:.0f} s, profile {run_record['profile']}, {run_record['device']}"
        )
        for cell in notebook.cells:
            if "report" in cell.metadata.get("tags", []):
                for out in cell.get("outputs", []):
                    if out.get("output_type") == "stream":
                        print(out["text"], end="")
        print(f"executed notebook: {output}")
    return 1 if failed else 0


def assign(args) -> int:
    """Generate labs/ from solutions/ (or, with --check, report whether they are in sync)."""
    from cnnlab.notebooks.assign import assign as generate
    from cnnlab.notebooks.catalog import project_root

    root = project_root()
    changed = generate(root / "solutions", root / "labs", check=args.check)
    for path in changed:
        print(f"{'out of date' if args.check else 'wrote'}: {path}")
    if args.check and changed:
        print("labs/ is not what `cnnlab assign` generates from solutions/; run `cnnlab assign`")
        return 1
    if not changed:
        print("labs/ is in sync with solutions/")
    return 0


def grade(args) -> int:
    """Grade submitted notebooks into --out: per-submission JSON, Gradescope files, a gradebook."""
    from cnnlab.grading.batch import grade_batch
    from cnnlab.grading.isolation import IsolationUnavailable
    from cnnlab.grading.limits import Limits
    from cnnlab.grading.shards import Shard

    limits = Limits(cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout)
    if args.out.endswith(".ipynb"):  # a submission named "--out=x.ipynb", read as an option
        print(f"cnnlab grade: --out {args.out!r} looks like a notebook; put submissions after `--`", file=sys.stderr)
        return 2
    import signal

    def stop(*_):  # SIGTERM (a scheduler's preemption): clean up as for Ctrl-C; finished results stay
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    paths = [Path(p) for p in args.submissions]
    missing = [str(p) for p in paths if not os.path.lexists(p)]
    if missing:
        print(f"no such submission file(s): {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        grade_batch(
            args.lab, paths, Path(args.out), jobs=args.jobs, force=args.force, limits=limits, profile=args.profile,
            isolation=args.isolation, allow_unsafe=args.unsafe_no_isolation, visibility=args.visibility,
            slim=not args.run_every_cell, shard=Shard.parse(args.shard) if args.shard else None,
        )  # fmt: skip
    except IsolationUnavailable as error:
        print(f"cnnlab grade: {error}", file=sys.stderr)
        return 3
    return 0


def gradescope(args) -> int:
    """Grade the one notebook in a Gradescope autograder container; results.json is always written."""
    from cnnlab.grading.gradescope import grade_in_gradescope

    return grade_in_gradescope(
        args.lab, Path(args.submission_dir), Path(args.results), profile=args.profile, isolation=args.isolation,
        allow_unsafe=args.unsafe_no_isolation, visibility=args.visibility,
    )  # fmt: skip


def gradebook_merge(args) -> int:
    """Merge the output folders of a batch's shards into one gradebook and results folder."""
    from cnnlab.grading.results import summary
    from cnnlab.grading.shards import MergeError, merge

    try:
        merged, missing = merge([Path(f) for f in args.folders], Path(args.out))
    except MergeError as error:
        print(f"cnnlab gradebook merge: {error}", file=sys.stderr)
        return 2
    print(summary(merged))
    if missing:
        print(f"MISSING ({len(missing)}): {', '.join(missing)}; grade them again with --shard", file=sys.stderr)
        return 1
    print(f"merged {len(merged)} result(s) into {args.out}")
    return 0


def gradescope_package(args) -> int:
    """Build the zip that Gradescope takes to grade one lab (setup.sh, run_autograder, a cnnlab wheel)."""
    from cnnlab.grading.gradescope_package import build_package

    out = build_package(args.lab, Path(args.out), bundle_data=not args.no_data)
    print(f"Gradescope autograder for lab {args.lab}: {out} (upload it as the autograder; see README.md inside)")
    return 0


def release(args) -> int:
    """Build the student bundle: labs/, the student guide and a cnnlab wheel; scan it for leaks."""
    from cnnlab.grading.release import build_release

    bundle, problems = build_release(Path(args.out), colab_base=args.colab_base, install_source=args.install_source)
    for problem in problems:
        print(f"LEAK: {problem}")
    print(f"student bundle: {bundle}" if not problems else "the bundle leaks instructor material; nothing was released")
    return 1 if problems else 0


def _isolation_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--isolation", choices=("auto", "bwrap", "uid", "none"), default="auto",
        help="how student code is isolated (default: the best this machine gives; see cnnlab doctor)",
    )  # fmt: skip
    parser.add_argument(
        "--unsafe-no-isolation", action="store_true",
        help="allow running student code as the grader's own user when nothing better is available",
    )  # fmt: skip
    parser.add_argument(
        "--visibility", choices=("hidden", "after_due_date", "after_published", "visible"), default="after_published",
        help="Gradescope visibility of the hidden tests' results (default: after_published)",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnlab", description="Keras 3 CNN course labs")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("doctor", help="check the installation, devices and data").set_defaults(handler=doctor)
    fetch_parser = commands.add_parser("fetch", help="download and verify datasets into the cache")
    fetch_parser.add_argument("names", nargs="*", help="datasets to fetch: " + ", ".join(sorted(manifest.assets())))
    fetch_parser.add_argument("--all", action="store_true", help="fetch every dataset")
    fetch_parser.set_defaults(handler=fetch)
    run_parser = commands.add_parser("run", help="execute a lab's solution notebook end to end")
    run_parser.add_argument(
        "lab", help="lab number or name (" + ", ".join(short for _, short in LABS.values()) + "), or 'all'"
    )
    run_parser.add_argument(
        "--profile", choices=("smoke", "full"), default=None, help="default: $CNNLAB_PROFILE, else by device"
    )
    run_parser.add_argument("--output-dir", default="runs", help="where the executed notebook goes (default: ./runs)")
    run_parser.add_argument(
        "--inplace", action="store_true", help="overwrite the solution notebook with the executed one"
    )
    run_parser.set_defaults(handler=run)
    assign_parser = commands.add_parser("assign", help="generate the student notebooks in labs/ from solutions/")
    assign_parser.add_argument("--check", action="store_true", help="only report whether labs/ is in sync")
    assign_parser.set_defaults(handler=assign)
    grade_parser = commands.add_parser(
        "grade", help="grade submitted notebooks (sandboxed; hidden tests in solutions/hidden)"
    )
    grade_parser.add_argument("--lab", required=True, help="lab number or name")
    grade_parser.add_argument("submissions", nargs="+", help="submitted .ipynb files")
    grade_parser.add_argument("--out", required=True, help="output folder: NAME.json, NAME/results.json, gradebook.csv")
    grade_parser.add_argument("--jobs", type=int, default=1, help="submissions graded at once")
    grade_parser.add_argument("--force", action="store_true", help="grade again submissions that already have a result")
    grade_parser.add_argument("--profile", choices=("smoke", "full"), default="smoke")
    grade_parser.add_argument("--cell-timeout", type=int, default=300, help="seconds per cell")
    grade_parser.add_argument("--notebook-timeout", type=int, default=900, help="seconds per notebook")
    grade_parser.add_argument(
        "--shard", metavar="K/N", help="grade only shard K (0 <= K < N) of the batch, split by content hash"
    )
    grade_parser.add_argument(
        "--run-every-cell", action="store_true",
        help="run the cells the grade does not need too (checks, training, figures marked grading: skip)",
    )  # fmt: skip
    _isolation_arguments(grade_parser)
    grade_parser.set_defaults(handler=grade)
    gradescope_parser = commands.add_parser("gradescope", help="grade one submission inside a Gradescope autograder")
    gradescope_parser.add_argument("--lab", required=True)
    gradescope_parser.add_argument("--submission-dir", default="/autograder/submission")
    gradescope_parser.add_argument("--results", default="/autograder/results/results.json")
    gradescope_parser.add_argument("--profile", choices=("smoke", "full"), default="smoke")
    _isolation_arguments(gradescope_parser)
    gradescope_parser.set_defaults(handler=gradescope)
    gradebook_parser = commands.add_parser("gradebook", help="gradebook tools")
    gradebook_commands = gradebook_parser.add_subparsers(dest="gradebook_command", required=True)
    merge_parser = gradebook_commands.add_parser("merge", help="merge the output folders of a sharded batch")
    merge_parser.add_argument("folders", nargs="+", help="the shards' --out folders")
    merge_parser.add_argument("--out", required=True, help="folder for the merged results and gradebook")
    merge_parser.set_defaults(handler=gradebook_merge)
    package_parser = commands.add_parser(
        "gradescope-package", help="build the autograder zip that Gradescope takes for one lab"
    )
    package_parser.add_argument("--lab", required=True, help="lab number or name")
    package_parser.add_argument("--out", default="autograder.zip", help="the zip to write (default: autograder.zip)")
    package_parser.add_argument(
        "--no-data", action="store_true", help="leave the lab's data out; setup.sh then downloads it"
    )
    package_parser.set_defaults(handler=gradescope_package)
    release_parser = commands.add_parser("release", help="build the student bundle and check it leaks nothing")
    release_parser.add_argument("--out", default="release", help="folder for the bundle")
    release_parser.add_argument(
        "--colab-base",
        help="where Colab opens the labs, e.g. https://colab.research.google.com/github/ORG/REPO/blob/main/labs",
    )
    release_parser.add_argument(
        "--install-source",
        help="what the labs' Colab cell installs (default: PyPI's cnnlab), e.g. cnnlab==0.2.0 or a URL",
    )
    release_parser.set_defaults(handler=release)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, FileNotFoundError) as error:  # bad arguments or missing course files: say which
        print(f"cnnlab {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
