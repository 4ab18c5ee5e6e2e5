#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment in .venv from tools/requirements.txt,
# then installs asrdistill itself in editable mode. Idempotent: a finished install is recorded in
# .venv/.installed with the hash of the requirements, and re-running it is a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
python=${PYTHON:-python3}
stamp="$venv/.installed"
want="$(cat tools/requirements.txt tools/install.sh setup.cfg | sha1sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "tools/install.sh: setting up $venv (about 2 minutes, 1.3 GB)" >&2
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
# --no-compile: no .pyc for the ~10,000 files installed (Python compiles what it imports, once, on first use)
"$venv/bin/pip" install -q --disable-pip-version-check --no-compile -r tools/requirements.txt
# torchaudio 2.11.0 on the index is a CUDA build; only its pure-torch Kaldi compliance module is used here
# (STACK.md trap 1). --no-deps keeps it from pulling another torch.
"$venv/bin/pip" install -q --disable-pip-version-check --no-compile --no-deps torchaudio==2.11.0
"$venv/bin/python" tools/fix_torchaudio.py
"$venv/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
echo "$want" > "$stamp"
echo "tools/install.sh: done" >&2
