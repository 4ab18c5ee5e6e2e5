"""Training a word n-gram LM from Kaldi ``text`` files (or taking the user's ARPA), with perplexities."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Sequence

from asrdistill.errors import UserFacingError
from asrdistill.lm.arpa import ArpaLM, read_sentences
from asrdistill.lm.gfst import arpa_to_G, read_symbol_table
from asrdistill.lm.kneser_ney import estimate_kneser_ney
from asrdistill.utils import atomic_path, get_logger, write_json_atomic

log = get_logger(__name__)

RESERVED_WORDS = {"<eps>", "#0", "<s>", "</s>"}


def lexicon_words(words_txt: str | os.PathLike) -> list[str]:
    """The real words of a lang dir's words.txt (no <eps>, #0, <s>, </s>)."""
    return [w for w in read_symbol_table(words_txt) if w not in RESERVED_WORDS]


def train_lm(train_text: Sequence[str | os.PathLike], out_dir: str | os.PathLike, order: int = 3,
             words_txt: str | os.PathLike | None = None, unk_word: str = "<UNK>",
             eval_text: dict[str, str | os.PathLike] | None = None, arpa: str | os.PathLike | None = None,
             make_G: bool = True) -> dict:
    """Estimate ``out_dir/lm.arpa`` (KN, ``order``) from Kaldi text files, or copy the user's ``arpa``.

    ``words_txt``: the lang dir's words.txt; its words form the LM vocabulary (training words outside it
    become ``unk_word``) and, with ``make_G``, ``out_dir/G.fst`` is built from it. ``eval_text``: name ->
    Kaldi text file whose perplexity is reported. Returns (and writes to ``out_dir/lm.json``) the summary.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arpa_out = out / "lm.arpa"
    info: dict = {"order": order}
    if arpa is not None:
        lm = ArpaLM.read(arpa)
        with atomic_path(arpa_out) as tmp:
            shutil.copyfile(arpa, tmp)
        info.update(source=str(arpa), order=lm.order)
    else:
        sents = [s for f in train_text for s in read_sentences(f)]
        if not sents:
            raise UserFacingError(f"no sentences in {', '.join(map(str, train_text))}")
        vocab = lexicon_words(words_txt) if words_txt is not None else None
        if vocab is not None and unk_word not in vocab:
            raise UserFacingError(f"{words_txt}: unknown-word symbol {unk_word!r} is not a word of the lexicon")
        lm = estimate_kneser_ney(sents, order=order, vocabulary=vocab, unk_word=unk_word)
        info.update(source="kneser-ney", **lm.info)
        info["max_normalization_error"] = lm.check_normalization(tol=1e-4, max_histories=2000)
        lm.write(arpa_out)
        info["train_perplexity"] = lm.perplexity(sents).as_dict()
    for name, path in (eval_text or {}).items():
        ppl = lm.perplexity(read_sentences(path))
        info[f"{name}_perplexity"] = ppl.as_dict()
        log.info("perplexity on %s (%s): %.2f (%d words, %d OOV)", name, path, ppl.perplexity, ppl.words, ppl.oovs)
    if make_G and words_txt is not None:
        info["G"] = arpa_to_G(arpa_out, words_txt, out / "G.fst", max_order=lm.order)
    info["arpa"] = str(arpa_out)
    write_json_atomic(out / "lm.json", info)
    return info
