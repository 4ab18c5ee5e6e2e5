"""Make ``import torchaudio`` work on a CPU-only torch (STACK.md trap 1).

torchaudio 2.11.0 from the package index ships compiled extensions linked against CUDA
(``libc10_cuda.so``). asrdistill only uses ``torchaudio.compliance.kaldi`` which is pure torch, so
on a machine whose torch has no CUDA the compiled libraries are moved aside; torchaudio then
imports with its extension marked unavailable. On a CUDA torch nothing is touched.
"""
from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys


def main() -> int:
    spec = importlib.util.find_spec("torchaudio")
    if spec is None or spec.origin is None:
        print("fix_torchaudio: torchaudio is not installed", file=sys.stderr)
        return 1
    ok = subprocess.run([sys.executable, "-c", "import torchaudio.compliance.kaldi"],
                        capture_output=True).returncode == 0
    if ok:
        return 0
    import torch

    if torch.version.cuda is not None:
        print("fix_torchaudio: torchaudio fails to import on a CUDA torch; not touching it", file=sys.stderr)
        return 1
    libdir = pathlib.Path(spec.origin).parent / "lib"
    aside = libdir.parent / "lib_cuda_disabled"
    aside.mkdir(exist_ok=True)
    for so in libdir.glob("*.so"):
        so.rename(aside / so.name)
    ok = subprocess.run([sys.executable, "-c", "import torchaudio.compliance.kaldi"],
                        capture_output=True).returncode == 0
    print(f"fix_torchaudio: moved CUDA-only libraries to {aside}; import {'ok' if ok else 'STILL FAILS'}",
          file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
