"""G.fst, the grammar transducer, from an ARPA language model (Kaldi's ``arpa2fst`` via kaldilm).

kaldilm runs in a subprocess (``python -m kaldilm``): importing it in a process that also uses
kaldifst / kaldi_hmm_gmm can deadlock (STACK.md trap 3). Options as Kaldi's ``format_lm.sh``:
``--disambig-symbol=#0`` on the input side of back-off arcs, ``<s>``/``</s>`` turned into epsilons,
the lang dir's ``words.txt`` as the symbol table. The result is arc-sorted on input labels and written
in OpenFst binary format.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from asrdistill.errors import UserFacingError
from asrdistill.lm.arpa import ArpaLM
from asrdistill.utils import atomic_path, get_logger

log = get_logger(__name__)


def read_symbol_table(path: str | os.PathLike) -> dict[str, int]:
    """A Kaldi/OpenFst symbol table (``symbol id`` per line); errors name the file and line."""
    out: dict[str, int] = {}
    path = Path(path)
    if not path.is_file():
        raise UserFacingError(f"{path}: symbol table not found")
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].isdigit():
            raise UserFacingError(f"{path}:{lineno}: expected 'symbol id', got {line!r}")
        out[parts[0]] = int(parts[1])
    return out


def arpa_to_G(arpa: str | os.PathLike, words_txt: str | os.PathLike, G_path: str | os.PathLike,
              max_order: int = -1, disambig_symbol: str = "#0", timeout: float | None = 3600) -> dict:
    """Convert ``arpa`` into ``G_path`` (OpenFst binary). Returns {"states", "arcs", "bytes", "oov_words"}.

    ARPA words missing from ``words_txt`` are reported (arpa2fst drops their n-grams) before conversion.
    """
    arpa, words_txt, G_path = Path(arpa), Path(words_txt), Path(G_path)
    words = read_symbol_table(words_txt)
    for sym in (disambig_symbol, "<s>", "</s>"):
        if sym not in words:
            raise UserFacingError(f"{words_txt}: has no {sym!r} (needed by G.fst; is this a lang dir's words.txt?)")
    lm = ArpaLM.read(arpa)  # validates the ARPA file before OpenFst sees it (its errors kill the process)
    oov = [w for w in lm.vocabulary if w not in words]
    if oov:
        log.warning("%s: %d ARPA words not in %s (their n-grams are dropped): %s", arpa, len(oov), words_txt,
                    " ".join(oov[:10]))
    with atomic_path(G_path) as tmp:
        raw = tmp.with_name(tmp.name + ".raw")
        cmd = [sys.executable, "-m", "kaldilm", f"--read-symbol-table={words_txt}",
               f"--disambig-symbol={disambig_symbol}", f"--max-order={max_order}", "--max-arpa-warnings=10",
               str(arpa), str(raw)]
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=timeout)
        if proc.returncode != 0 or not raw.is_file():
            raise UserFacingError(f"{arpa}: kaldilm (arpa2fst) failed:\n{proc.stderr[-2000:]}")
        import kaldifst
        fst = kaldifst.StdVectorFst.read(str(raw))
        kaldifst.arcsort(fst, sort_type="ilabel")
        if not fst.write(str(tmp)):
            raise UserFacingError(f"{G_path}: cannot write")
        states, arcs = fst.num_states, sum(fst.num_arcs(s) for s in range(fst.num_states))
    info = {"states": states, "arcs": arcs, "bytes": G_path.stat().st_size, "oov_words": len(oov)}
    log.info("G.fst %s: %d states, %d arcs, %d bytes", G_path, states, arcs, info["bytes"])
    return info
