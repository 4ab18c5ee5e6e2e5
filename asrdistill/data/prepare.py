"""Stage 1 of every recipe: validate the data dirs and the dict dir and copy them into the recipe's ``data/``.

Any corpus enters the toolkit here: the built-in synthetic one, or a user's own Kaldi data dirs and dict dir.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from asrdistill.lang.lexicon import check_transcripts, read_dict_dir
from asrdistill.data.kaldi_dir import copy_data_dir, read_data_dir
from asrdistill.utils import get_logger

log = get_logger(__name__)

# Files beside the Kaldi ones that later stages use when present (ground-truth phone times of the synth corpus).
EXTRA_FILES = ("phones.ctm",)


@dataclass
class SplitInfo:
    name: str
    utterances: int
    speakers: int
    words: int
    oov_words: int


def prepare_split(name: str, src: str | os.PathLike, dictionary, dest: str | os.PathLike,
                  allow_pipes: bool = False) -> SplitInfo:
    """Validate the data dir ``src`` against ``dictionary`` (a read dict dir) and copy it to ``dest``."""
    dd = read_data_dir(src, allow_pipes=allow_pipes)
    oov = check_transcripts(dictionary, dd.text or {}, str(dd.path / "text"))
    words = sum(len(t.split()) for t in (dd.text or {}).values())
    if oov:
        top = sorted(oov.items(), key=lambda kv: -kv[1])[:10]
        log.warning("%s: %d of %d words are not in the lexicon and map to <UNK>; most frequent: %s",
                    src, sum(oov.values()), words, top)
    info = SplitInfo(name, len(dd), len(dd.spk2utt), words, sum(oov.values()))
    copy_data_dir(dd, dest, extra_files=EXTRA_FILES)
    log.info("%s: %d utterances, %d speakers -> %s", src, info.utterances, info.speakers, dest)
    return info


def read_dictionary(dict_dir: str | os.PathLike):
    """The dict dir, validated, with a log line of its size."""
    dictionary = read_dict_dir(dict_dir)
    log.info("dict %s: %d lexicon entries, %d words, %d silence + %d nonsilence phones", dict_dir,
             len(dictionary.lexicon), len(dictionary.words), len(dictionary.silence_phones),
             len(dictionary.nonsilence_phones))
    return dictionary
