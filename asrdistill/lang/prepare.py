"""Building a Kaldi lang dir from a dict dir, in the manner of Kaldi's ``utils/prepare_lang.sh``.

Lang dir contents:
  phones.txt           ``<eps>`` 0, silence phones, nonsilence phones, then disambiguation symbols #0, #1, ...
  words.txt            ``<eps>`` 0, the lexicon's words (sorted), #0, <s>, </s>
  oov.txt, oov.int     the word transcripts' out-of-vocabulary words map to (``<UNK>`` if the lexicon has it)
  topo                 HMM topology: 3-state left-to-right for nonsilence phones, Kaldi's 5-state silence model
  L.fst                lexicon transducer (phones -> words) with optional silence between words, arcs sorted
                       on output labels, OpenFst binary format
  L_disambig.fst       the same with pronunciation disambiguation symbols and a #0:#0 self-loop
  phones/              silence, nonsilence, optional_silence, disambig (.txt and .int); roots.txt/.int
                       (``shared split PH ...``: each phone set its own tree root), sets.txt/.int and
                       extra_questions.txt/.int (for the decision tree's phone questions)
  lang.json            the above as one JSON document (read by :func:`load_lang`)

Optional silence: after each word (and at the start), the silence phone follows with probability
``sil_prob`` (0.5 as in prepare_lang.sh): costs -log(sil_prob) and -log(1 - sil_prob).
"""
from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping

from asrdistill.errors import DataDirError, UserFacingError
from asrdistill.lang.lexicon import DictDir, read_dict_dir
from asrdistill.utils import atomic_path, get_logger, mark_done

if TYPE_CHECKING:  # pragma: no cover
    import kaldi_hmm_gmm
    import kaldifst

log = get_logger(__name__)

SPEECH_STATES = 3
SILENCE_STATES = 5


@dataclass
class Lang:
    """A lang dir in memory. Phone and word ids are positions in ``phones`` / ``words``."""

    path: Path
    phones: list[str]                   # phones.txt: id -> symbol (incl. <eps> and #k)
    words: list[str]                    # words.txt: id -> symbol
    silence_phones: list[int]
    nonsilence_phones: list[int]
    optional_silence: int
    disambig_phones: list[int]          # #0, #1, ...
    roots: list[tuple[bool, bool, list[int]]]   # (shared, split, phone ids) per tree root
    sets: list[list[int]]
    extra_questions: list[list[int]]
    oov: str | None                     # word that out-of-vocabulary transcript words become
    topo_text: str
    sil_prob: float

    @property
    def phone2id(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.phones)}

    @property
    def word2id(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    @property
    def real_phones(self) -> list[int]:
        """Ids of the phones that have HMMs (silence + nonsilence), sorted."""
        return sorted(self.silence_phones + self.nonsilence_phones)

    @property
    def num_pdf_classes(self) -> dict[int, int]:
        """HMM states with a pdf per phone id (3 for speech, 5 for silence)."""
        out = {p: SPEECH_STATES for p in self.nonsilence_phones}
        out.update({p: SILENCE_STATES for p in self.silence_phones})
        return out

    @property
    def L_path(self) -> Path:
        return self.path / "L.fst"

    @property
    def L_disambig_path(self) -> Path:
        return self.path / "L_disambig.fst"

    def topology(self) -> "kaldi_hmm_gmm.HmmTopology":
        import kaldi_hmm_gmm as khg
        topo = khg.HmmTopology()
        topo.read(self.topo_text)
        return topo

    def lexicon_fst(self, disambig: bool = False) -> "kaldifst.StdVectorFst":
        import kaldifst
        path = self.L_disambig_path if disambig else self.L_path
        fst = kaldifst.StdVectorFst.read(str(path))
        if fst is None:
            raise UserFacingError(f"{path}: cannot read the lexicon FST")
        return fst


def make_topology(speech_phones: Iterable[int], silence_phones: Iterable[int]) -> str:
    """Kaldi HMM topology text: 3-state left-to-right (0.75 self-loop) for speech phones and the
    5-state silence model of prepare_lang.sh (states 0-3 fully connected among 1-3, state 4 exits)."""
    def entry(phones: Iterable[int], states: list[str]) -> str:
        return ("<TopologyEntry>\n<ForPhones>\n" + " ".join(map(str, phones)) + "\n</ForPhones>\n"
                + "\n".join(states) + "\n</TopologyEntry>\n")
    speech = [f"<State> {s} <PdfClass> {s} <Transition> {s} 0.75 <Transition> {s + 1} 0.25 </State>"
              for s in range(SPEECH_STATES)] + [f"<State> {SPEECH_STATES} </State>"]
    sil = ["<State> 0 <PdfClass> 0 " + " ".join(f"<Transition> {t} 0.25" for t in range(4)) + " </State>"]
    for s in (1, 2, 3):
        sil.append(f"<State> {s} <PdfClass> {s} " + " ".join(f"<Transition> {t} 0.25" for t in (1, 2, 3, 4))
                   + " </State>")
    sil += ["<State> 4 <PdfClass> 4 <Transition> 4 0.75 <Transition> 5 0.25 </State>", "<State> 5 </State>"]
    text = "<Topology>\n"
    speech_phones, silence_phones = list(speech_phones), list(silence_phones)
    if speech_phones:
        text += entry(speech_phones, speech)
    if silence_phones:
        text += entry(silence_phones, sil)
    return text + "</Topology>\n"


def pronunciation_disambig(prons: list[tuple[str, ...]]) -> list[int]:
    """Disambiguation symbol index (0: none, k: #k) per pronunciation, as Kaldi's add_lex_disambig.pl:
    a pronunciation that occurs more than once, or is a proper prefix of another, gets #1, #2, ..."""
    count = Counter(prons)
    prefixes = {p[:i] for p in set(prons) for i in range(1, len(p))}
    used: Counter = Counter()
    out = []
    for p in prons:
        if count[p] == 1 and p not in prefixes:
            out.append(0)
        else:
            used[p] += 1
            out.append(used[p])
    return out


def _lexicon_fst_text(entries: list[tuple[int, float, list[int]]], sil: int, sil_prob: float,
                      loop_label: tuple[int, int] | None) -> str:
    """Text-format L: state 0 start, 1 loop (final), 2 before optional silence."""
    sil_cost = -math.log(sil_prob)
    nosil_cost = -math.log(1.0 - sil_prob)
    lines = [f"0 1 0 0 {nosil_cost}", f"0 2 0 0 {sil_cost}", f"2 1 {sil} 0 0"]
    next_state = 3
    for word, prob, phones in entries:
        pron_cost = -math.log(prob)
        src = 1
        for i, phone in enumerate(phones):
            olabel = word if i == 0 else 0
            cost = pron_cost if i == 0 else 0.0
            if i == len(phones) - 1:
                lines.append(f"{src} 1 {phone} {olabel} {cost + nosil_cost}")
                lines.append(f"{src} 2 {phone} {olabel} {cost + sil_cost}")
            else:
                lines.append(f"{src} {next_state} {phone} {olabel} {cost}")
                src = next_state
                next_state += 1
    if loop_label is not None:
        lines.append(f"1 1 {loop_label[0]} {loop_label[1]} 0")
    lines.append("1 0")
    return "\n".join(lines) + "\n"


def _compile_fst(text: str, path: Path) -> None:
    import kaldifst
    fst = kaldifst.compile(text, acceptor=False)
    kaldifst.arcsort(fst, sort_type="olabel")
    if not fst.write(str(path)):
        raise UserFacingError(f"{path}: cannot write FST")


def _write_symbols(path: Path, symbols: list[str]) -> None:
    path.write_text("".join(f"{s} {i}\n" for i, s in enumerate(symbols)))


def prepare_lang(dict_dir: str | os.PathLike, lang_dir: str | os.PathLike, oov_word: str = "<UNK>",
                 sil_prob: float = 0.5) -> Lang:
    """Build ``lang_dir`` from a Kaldi dict dir (validated first) and return the :class:`Lang`.

    The directory is written under a temporary name and renamed into place, so it is complete or absent.
    ``oov_word`` is used for out-of-vocabulary transcript words only if the lexicon contains it.
    """
    if not 0.0 < sil_prob < 1.0:
        raise UserFacingError(f"sil_prob must be in (0, 1), got {sil_prob}")
    d: DictDir = read_dict_dir(dict_dir)
    phones = ["<eps>"] + d.silence_phones + d.nonsilence_phones
    prons = [pron for _, _, pron in d.lexicon]
    disambig = pronunciation_disambig(prons)
    num_disambig = max(disambig) + 1  # #0 (LM back-off) .. #max, plus one spare as prepare_lang.sh does
    disambig_syms = [f"#{k}" for k in range(num_disambig + 1)]
    phones += disambig_syms
    p2i = {p: i for i, p in enumerate(phones)}
    words = ["<eps>"] + d.words + ["#0", "<s>", "</s>"]
    w2i = {w: i for i, w in enumerate(words)}
    sil_ids = [p2i[p] for p in d.silence_phones]
    nonsil_ids = [p2i[p] for p in d.nonsilence_phones]
    roots = [(True, True, [p2i[p] for p in s]) for s in d.silence_sets + d.nonsilence_sets]
    sets = [[p2i[p] for p in s] for s in d.silence_sets + d.nonsilence_sets]
    extra = [[p2i[p] for p in q] for q in d.extra_questions]
    oov = oov_word if oov_word in w2i and oov_word in d.words else None
    lang = Lang(Path(lang_dir), phones, words, sil_ids, nonsil_ids, p2i[d.optional_silence],
                [p2i[s] for s in disambig_syms], roots, sets, extra, oov,
                make_topology(nonsil_ids, sil_ids), sil_prob)

    entries = [(w2i[w], prob, [p2i[p] for p in pron]) for w, prob, pron in d.lexicon]
    entries_disambig = [(w, prob, ph + ([p2i[f"#{k}"]] if k else [])) for (w, prob, ph), k in
                        zip(entries, disambig)]
    with atomic_path(lang_dir) as tmp:
        tmp.mkdir()
        _write_symbols(tmp / "phones.txt", phones)
        _write_symbols(tmp / "words.txt", words)
        if oov is not None:
            (tmp / "oov.txt").write_text(oov + "\n")
            (tmp / "oov.int").write_text(f"{w2i[oov]}\n")
        (tmp / "topo").write_text(lang.topo_text)
        _compile_fst(_lexicon_fst_text(entries, lang.optional_silence, sil_prob, None), tmp / "L.fst")
        _compile_fst(_lexicon_fst_text(entries_disambig, lang.optional_silence, sil_prob,
                                       (p2i["#0"], w2i["#0"])), tmp / "L_disambig.fst")
        pdir = tmp / "phones"
        pdir.mkdir()
        for name, ids in (("silence", sil_ids), ("nonsilence", nonsil_ids),
                          ("optional_silence", [lang.optional_silence]), ("disambig", lang.disambig_phones)):
            (pdir / f"{name}.txt").write_text("".join(f"{phones[i]}\n" for i in ids))
            (pdir / f"{name}.int").write_text("".join(f"{i}\n" for i in ids))
        (pdir / "roots.txt").write_text("".join(
            f"{'shared' if sh else 'not-shared'} {'split' if sp else 'not-split'} "
            f"{' '.join(phones[i] for i in ids)}\n" for sh, sp, ids in roots))
        (pdir / "roots.int").write_text("".join(
            f"{'shared' if sh else 'not-shared'} {'split' if sp else 'not-split'} "
            f"{' '.join(map(str, ids))}\n" for sh, sp, ids in roots))
        for name, groups in (("sets", sets), ("extra_questions", extra)):
            (pdir / f"{name}.txt").write_text("".join(" ".join(phones[i] for i in g) + "\n" for g in groups))
            (pdir / f"{name}.int").write_text("".join(" ".join(map(str, g)) + "\n" for g in groups))
        info = {k: v for k, v in lang.__dict__.items() if k not in ("path", "words")}
        info["roots"] = [[sh, sp, ids] for sh, sp, ids in roots]
        (tmp / "lang.json").write_text(json.dumps(info, indent=1) + "\n")
        mark_done(tmp)
    log.info("lang dir %s: %d phones (%d silence), %d disambig symbols, %d words, oov=%s", lang_dir,
             len(sil_ids) + len(nonsil_ids), len(sil_ids), len(disambig_syms), len(words), oov)
    lang.topology()  # checks that Kaldi accepts the topology
    return lang


def load_lang(lang_dir: str | os.PathLike) -> Lang:
    """Load a lang dir written by :func:`prepare_lang`."""
    path = Path(lang_dir)
    info_path = path / "lang.json"
    if not info_path.is_file():
        raise UserFacingError(f"{path}: not a lang dir (no lang.json; run `asrdistill prepare-lang`)")
    info = json.loads(info_path.read_text())
    words = [line.split()[0] for line in (path / "words.txt").read_text().splitlines() if line.strip()]
    info["roots"] = [(bool(sh), bool(sp), list(ids)) for sh, sp, ids in info["roots"]]
    return Lang(path=path, words=words, **info)


def _text_line(text_file: Path, utt: str) -> int | None:
    try:
        for lineno, line in enumerate(text_file.read_text().splitlines(), 1):
            if line.split(maxsplit=1)[:1] == [utt]:
                return lineno
    except OSError:
        pass
    return None


def transcripts_to_ids(lang: Lang, text: Mapping[str, str], text_file: str | os.PathLike | None = None
                       ) -> dict[str, list[int]]:
    """Word ids of each utterance's transcript. Out-of-vocabulary words become ``lang.oov`` (logged with
    counts) when the lexicon has one; otherwise a DataDirError names the text file's line and the utterance."""
    w2i = lang.word2id
    reserved = {"<eps>", "#0", "<s>", "</s>"}
    oov_id = w2i[lang.oov] if lang.oov is not None else None
    oov_counts: Counter = Counter()
    out: dict[str, list[int]] = {}
    tf = Path(text_file) if text_file is not None else None
    for utt, line in text.items():
        ids = []
        for w in line.split():
            i = w2i.get(w)
            if i is None or w in reserved:
                if oov_id is None or w in reserved:
                    raise DataDirError(str(tf) if tf else "text", _text_line(tf, utt) if tf else None,
                                       f"word {w!r} is not in the lexicon and the lexicon has no OOV word "
                                       f"(add e.g. '<UNK> SPN' to lexicon.txt)", utt)
                oov_counts[w] += 1
                i = oov_id
            ids.append(i)
        out[utt] = ids
    if oov_counts:
        top = ", ".join(f"{w} ({c})" for w, c in oov_counts.most_common(10))
        log.warning("%d OOV word tokens (%d types) mapped to %s; most frequent: %s",
                    sum(oov_counts.values()), len(oov_counts), lang.oov, top)
    return out
