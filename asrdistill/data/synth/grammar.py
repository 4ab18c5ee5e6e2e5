"""A seeded template grammar over word classes: the sentences of the synthetic corpus.

Each sentence comes from one of a set of templates (statements, questions, reported speech)
whose slots are noun phrases, verb forms and time/place phrases drawn from the word classes
of :mod:`.vocab`. Determiners agree in number with their noun and ``a`` becomes ``an`` before
a vowel sound, so the word sequences have real structure and a word n-gram LM helps decoding.
All randomness comes from the ``numpy.random.Generator`` passed in.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asrdistill.data.synth.vocab import Vocabulary

# Function words the templates use literally (they are added to the lexicon).
DET_SINGULAR = ["the", "a", "this", "that", "every", "my", "your", "his", "her", "our", "their"]
DET_PLURAL = ["the", "these", "those", "some", "many", "few", "my", "your", "his", "her", "our",
              "their", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
FUNCTION_WORDS = sorted(set(DET_SINGULAR + DET_PLURAL + (
    "an and but because when while after before then not to of at with from for by about very "
    "too also really just said told was were is are will did could would went wanted years who "
    "where what why how there here last next on in every one gave lent lived month sent showed "
    "week year").split()))


@dataclass
class Sentence:
    words: list[str]
    question: bool = False

    @property
    def text(self) -> str:
        return " ".join(self.words)

    @property
    def spoken(self) -> str:
        """The text handed to espeak (punctuation only shapes intonation)."""
        return self.text + ("?" if self.question else ".")


class SentenceGenerator:
    """Draw sentences from the templates. ``vowel_initial``: words that start with a vowel sound."""

    def __init__(self, vocab: Vocabulary, vowel_initial: set[str]):
        self.v = vocab
        self.vowel_initial = vowel_initial
        self.names = vocab.words["name_m"] + vocab.words["name_f"]
        self.templates = [
            (3.0, self._transitive_past), (2.0, self._intransitive_past), (1.5, self._future),
            (1.0, self._negative), (1.5, self._meet_person), (1.5, self._description),
            (1.0, self._went_to), (1.0, self._reported), (1.0, self._bought_number),
            (1.0, self._together), (1.0, self._wanted_to), (1.0, self._location),
            (0.7, self._lived_in), (1.0, self._question_did), (0.7, self._question_where),
            (1.0, self._gave), (0.8, self._because), (0.8, self._mass),
        ]
        w = np.array([t[0] for t in self.templates])
        self._template_p = w / w.sum()

    # ---- helpers
    def _pick(self, rng: np.random.Generator, items: list):
        return items[int(rng.integers(len(items)))]

    def _maybe(self, rng: np.random.Generator, p: float) -> bool:
        return bool(rng.random() < p)

    def _fix_articles(self, words: list[str]) -> list[str]:
        out = list(words)
        for i in range(len(out) - 1):
            if out[i] in ("a", "an"):
                out[i] = "an" if out[i + 1] in self.vowel_initial else "a"
        return out

    def _np_sg(self, rng, cls: str = "thing") -> list[str]:
        noun = self._pick(rng, self.v.pairs[cls])[0]
        adj = [self._pick(rng, self.v.words["adjective"])] if self._maybe(rng, 0.4) else []
        return [self._pick(rng, DET_SINGULAR)] + adj + [noun]

    def _np_pl(self, rng, cls: str = "thing") -> list[str]:
        noun = self._pick(rng, self.v.pairs[cls])[1]
        adj = [self._pick(rng, self.v.words["adjective"])] if self._maybe(rng, 0.4) else []
        return [self._pick(rng, DET_PLURAL)] + adj + [noun]

    def _np(self, rng, cls: str = "thing") -> list[str]:
        return self._np_sg(rng, cls) if self._maybe(rng, 0.65) else self._np_pl(rng, cls)

    def _subject(self, rng) -> list[str]:
        r = rng.random()
        if r < 0.4:
            return [self._pick(rng, self.names)]
        if r < 0.7:
            return ["the"] + ([self._pick(rng, self.v.words["adjective"])] if self._maybe(rng, 0.3)
                              else []) + [self._pick(rng, self.v.pairs["person"])[0]]
        if r < 0.8:
            return self._np_pl(rng, "person")
        return [self._pick(rng, self.v.words["subject_pronoun"])]

    def _person_object(self, rng) -> list[str]:
        r = rng.random()
        if r < 0.45:
            return [self._pick(rng, self.names)]
        if r < 0.75:
            return self._np(rng, "person")
        return [self._pick(rng, self.v.words["object_pronoun"])]

    def _time(self, rng) -> list[str]:
        r = rng.random()
        if r < 0.3:
            return [self._pick(rng, self.v.words["time"])]
        if r < 0.5:
            return ["on", self._pick(rng, self.v.words["day"])] + (
                [self._pick(rng, self.v.words["part_of_day"])] if self._maybe(rng, 0.3) else [])
        if r < 0.65:
            return ["in", self._pick(rng, self.v.words["month"])]
        if r < 0.75:
            return ["in", "the", self._pick(rng, self.v.words["season"])]
        if r < 0.9:
            return ["last", self._pick(rng, ["week", "month", "year", "night", "summer", "winter"])]
        return ["this", self._pick(rng, self.v.words["part_of_day"])]

    def _opt_time(self, rng, p: float = 0.4) -> list[str]:
        return self._time(rng) if self._maybe(rng, p) else []

    def _place_pp(self, rng) -> list[str]:
        if self._maybe(rng, 0.4):
            return [self._pick(rng, ["in", "to", "from", "near"]), self._pick(rng, self.v.words["place"])]
        return [self._pick(rng, self.v.words["preposition_place"])] + self._np_sg(rng)

    def _adverb(self, rng, p: float = 0.25) -> list[str]:
        return [self._pick(rng, self.v.words["adverb"])] if self._maybe(rng, p) else []

    # ---- templates
    def _transitive_past(self, rng):
        vp = self._pick(rng, self.v.pairs["verb_thing"])[1]
        pp = self._place_pp(rng) if self._maybe(rng, 0.35) else []
        return self._subject(rng) + self._adverb(rng) + [vp] + self._np(rng) + pp + self._opt_time(rng)

    def _intransitive_past(self, rng):
        vp = self._pick(rng, self.v.pairs["verb_intr"])[1]
        return (self._subject(rng) + [vp] + self._adverb(rng, 0.4) + self._place_pp(rng)
                + self._opt_time(rng, 0.5))

    def _future(self, rng):
        base = self._pick(rng, self.v.pairs["verb_thing"])[0]
        return self._subject(rng) + ["will", base] + self._np(rng) + self._time(rng)

    def _negative(self, rng):
        base = self._pick(rng, self.v.pairs["verb_thing"])[0]
        aux = self._pick(rng, ["did", "could", "would"])
        return self._subject(rng) + [aux, "not", base] + self._np(rng) + self._opt_time(rng, 0.3)

    def _meet_person(self, rng):
        vp = self._pick(rng, self.v.pairs["verb_person"])[1]
        pp = self._place_pp(rng) if self._maybe(rng, 0.4) else []
        return self._subject(rng) + [vp] + self._person_object(rng) + pp + self._opt_time(rng)

    def _description(self, rng):
        adj = self._pick(rng, self.v.words["adjective"])
        very = [self._pick(rng, ["very", "too", "really"])] if self._maybe(rng, 0.4) else []
        if self._maybe(rng, 0.6):
            subj, be = self._np_sg(rng, self._pick(rng, ["thing", "thing", "person"])), "was"
        else:
            subj, be = self._np_pl(rng, self._pick(rng, ["thing", "thing", "person"])), "were"
        return subj + [be] + very + [adj] + self._opt_time(rng, 0.2)

    def _went_to(self, rng):
        return self._subject(rng) + ["went", "to", self._pick(rng, self.v.words["place"])] + self._opt_time(rng, 0.6)

    def _reported(self, rng):
        verb = self._pick(rng, ["said", "told"])
        head = self._subject(rng) + [verb] + (self._person_object(rng) if verb == "told" else [])
        inner = self._pick(rng, [self._intransitive_past, self._description, self._transitive_past])(rng)
        return head + ["that"] + inner

    def _bought_number(self, rng):
        verb = self._pick(rng, ["bought", "found", "sold", "brought", "made", "saw", "needed"])
        num = self._pick(rng, self.v.words["number"])
        obj = [self._pick(rng, self.v.pairs["thing"])[1]]
        if self._maybe(rng, 0.3):
            obj = [self._pick(rng, self.v.words["adjective"])] + obj
        tail = ["for", self._pick(rng, self.names)] if self._maybe(rng, 0.4) else self._opt_time(rng)
        return self._subject(rng) + [verb, num] + obj + tail

    def _together(self, rng):
        vp = self._pick(rng, self.v.pairs["verb_intr"])[1]
        return ([self._pick(rng, self.names), "and", self._pick(rng, self.names), vp, "together"]
                + self._opt_time(rng, 0.5))

    def _wanted_to(self, rng):
        if self._maybe(rng, 0.5):
            verb = [self._pick(rng, self.v.pairs["verb_thing"])[0]] + self._np(rng)
        else:
            verb = [self._pick(rng, self.v.pairs["verb_intr"])[0]] + self._place_pp(rng)
        return self._subject(rng) + ["wanted", "to"] + verb

    def _location(self, rng):
        if self._maybe(rng, 0.5):
            subj, be = self._np_sg(rng), self._pick(rng, ["is", "was"])
        else:
            subj, be = self._np_pl(rng), self._pick(rng, ["are", "were"])
        return subj + [be, self._pick(rng, self.v.words["preposition_place"])] + self._np_sg(rng)

    def _lived_in(self, rng):
        return self._subject(rng) + ["lived", "in", self._pick(rng, self.v.words["place"]), "for",
                                     self._pick(rng, self.v.words["number"]), "years"]

    def _question_did(self, rng):
        base = self._pick(rng, self.v.pairs["verb_thing"])[0]
        return ["did"] + self._subject(rng) + [base] + self._np(rng) + self._opt_time(rng, 0.3)

    def _question_where(self, rng):
        wh = self._pick(rng, ["where", "why", "when", "how"])
        base = self._pick(rng, self.v.pairs["verb_intr"])[0]
        return [wh, "did"] + self._subject(rng) + [base] + self._opt_time(rng, 0.3)

    def _gave(self, rng):
        verb = self._pick(rng, ["gave", "sent", "showed", "sold", "brought", "lent"])
        return self._subject(rng) + [verb] + self._np(rng) + ["to"] + self._person_object(rng) + self._opt_time(rng, 0.3)

    def _because(self, rng):
        adj = self._pick(rng, self.v.words["adjective"])
        reason = self._pick(rng, [self._intransitive_past, self._transitive_past, self._meet_person])(rng)
        return self._subject(rng) + ["was", adj, "because"] + reason

    def _mass(self, rng):
        verb = self._pick(rng, ["bought", "wanted", "needed", "brought", "found", "liked", "made"])
        tail = ["for", self._pick(rng, self.names)] if self._maybe(rng, 0.3) else self._opt_time(rng)
        return self._subject(rng) + [verb, "some", self._pick(rng, self.v.words["mass"])] + tail

    def sentence(self, rng: np.random.Generator) -> Sentence:
        idx = int(rng.choice(len(self.templates), p=self._template_p))
        fn = self.templates[idx][1]
        words = self._fix_articles(fn(rng))
        return Sentence(words, question=fn in (self._question_did, self._question_where))
