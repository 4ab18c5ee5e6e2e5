"""The synthetic corpus: determinism, splits, lexicon, phone timings, noise."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asrdistill.errors import UserFacingError
from asrdistill.lang.lexicon import read_dict_dir
from asrdistill.data.kaldi_dir import read_data_dir
from asrdistill.data.synth.corpus import (SPLITS, SynthOptions, UtteranceSpec, build_lexicon,
                                          ctm_lines, make_speakers, phone_segments, prepare_synth,
                                          plan_utterances, render_utterance)
from asrdistill.lang.arpabet import ARPABET

TINY = dict(hours=0.02, num_speakers=6, seed=3)  # ~70 s of audio, 30 utterances


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "corpus"
    prepare_synth(out, nj=1, progress=False, **TINY)
    return out


@pytest.fixture(scope="module")
def corpus_nj2(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth2") / "corpus"
    prepare_synth(out, nj=2, progress=False, **TINY)
    return out


def _read_ctm(path: Path) -> dict[str, list[tuple[float, float, str]]]:
    out: dict[str, list[tuple[float, float, str]]] = {}
    for line in path.read_text().splitlines():
        utt, chan, start, dur, phone = line.split()
        assert chan == "1" and len(start.split(".")[1]) == 3 and len(dur.split(".")[1]) == 3
        out.setdefault(utt, []).append((float(start), float(dur), phone))
    return out


def _utterances(corpus: Path) -> dict[str, dict]:
    return {d["utt"]: d for d in map(json.loads, (corpus / "utterances.jsonl").read_text().splitlines())}


def test_deterministic_and_independent_of_nj(corpus: Path, corpus_nj2: Path) -> None:
    files = sorted(p.relative_to(corpus) for p in corpus.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(corpus_nj2) for p in corpus_nj2.rglob("*") if p.is_file())
    n_wav = 0
    for rel in files:
        if rel.name == "summary.json":  # holds generation time
            continue
        a, b = (corpus / rel).read_bytes(), (corpus_nj2 / rel).read_bytes()
        if rel.name == "wav.scp":
            a, b = a.replace(str(corpus).encode(), b""), b.replace(str(corpus_nj2).encode(), b"")
        assert a == b, rel
        n_wav += rel.suffix == ".wav"
    assert n_wav >= 20


def test_idempotent(corpus: Path) -> None:
    stamp = {p: p.stat().st_mtime_ns for p in corpus.rglob("*") if p.is_file()}
    summary = prepare_synth(corpus, nj=1, progress=False, **TINY)
    assert {p: p.stat().st_mtime_ns for p in corpus.rglob("*") if p.is_file()} == stamp
    assert summary.utterances == json.loads((corpus / "summary.json").read_text())["utterances"]
    assert not [p for p in corpus.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_default_speakers_split_16_12_12_gender_balanced_with_unheard_voices() -> None:
    speakers = make_speakers(SynthOptions())
    assert len(speakers) == 40
    for split, n in (("train", 16), ("dev", 12), ("test", 12)):
        group = [s for s in speakers if s.split == split]
        assert len(group) == n
        assert sum(s.gender == "f" for s in group) == n // 2
        if split != "train":  # within a split every speaker has a voice variant of its own
            assert len({s.voice for s in group}) == n
    assert len({(s.voice, s.pitch, s.pitch_range, s.rate) for s in speakers}) == 40
    train_voices = {s.voice for s in speakers if s.split == "train"}
    dev = {s.voice for s in speakers if s.split == "dev"}
    test = {s.voice for s in speakers if s.split == "test"}
    assert dev == test and not train_voices & dev  # the same 12 unseen voices in dev and in test
    from asrdistill.lang.espeak import Espeak

    with Espeak() as es:
        for s in speakers:  # every variant exists in the bundled espeak-ng data
            es.set_voice(s.voice)


def test_fewer_speakers_hold_out_a_fifth_each_and_too_many_held_out_is_an_error() -> None:
    from collections import Counter

    assert Counter(s.split for s in make_speakers(SynthOptions(num_speakers=28))) == \
        {"train": 16, "dev": 6, "test": 6}
    assert Counter(s.split for s in make_speakers(SynthOptions(num_speakers=6))) == \
        {"train": 4, "dev": 1, "test": 1}
    with pytest.raises(UserFacingError, match="held-out voice variants"):
        make_speakers(SynthOptions(num_speakers=80, dev_speakers=14, test_speakers=14))


def test_held_out_voices_are_adult_and_the_rule_rejects_odd_ones() -> None:
    from asrdistill.data.synth.corpus import FEMALE_VOICES, HELD_OUT_VOICES, MALE_VOICES, adult_voice
    from asrdistill.lang.espeak import variant_formant_factors

    for variants in (FEMALE_VOICES, MALE_VOICES):
        assert all(adult_voice(v) for v in variants[-HELD_OUT_VOICES:])
    # F2 at 150% (Alicia), F4 at 9% (steph), F1-F3 at 80% (ian): not adult; the base voice is
    assert variant_formant_factors("Alicia")[2] == 150 and variant_formant_factors("steph")[4] == 9
    assert not any(adult_voice(v) for v in ("Alicia", "steph", "ian", "shelby")) and adult_voice("m6")
    with pytest.raises(ValueError, match="no voice variant"):
        variant_formant_factors("no-such-voice")


def _generator():
    """The corpus's sentence generator and lexicon, as prepare_synth builds them."""
    from asrdistill.data.synth.grammar import FUNCTION_WORDS, SentenceGenerator
    from asrdistill.data.synth.vocab import load_word_classes

    vocab = load_word_classes()
    lexicon, _, _ = build_lexicon(vocab.all_words() | set(FUNCTION_WORDS))
    vocab = vocab.restrict(lambda w: w in lexicon)
    return SentenceGenerator(vocab, {w for w, p in lexicon.items() if p and p[0][0] in "AEIOU"}), lexicon


def test_generated_test_speakers_have_adult_voices_of_their_own_on_top_of_the_hours() -> None:
    from asrdistill.data.synth.corpus import ADULT_FORMANT_RANGE, generated_voice, generated_voices
    from asrdistill.lang.espeak import formant_factors

    base = make_speakers(SynthOptions())
    opts = SynthOptions(generated_test_speakers=9)
    speakers = make_speakers(opts)
    gen = [s for s in speakers if s.generated]
    assert len(gen) == 9 and {s.split for s in gen} == {"test"}
    assert sum(s.gender == "f" for s in gen) == 5 and all(s.id[0] == s.gender for s in gen)
    assert [s for s in speakers if not s.generated] == base  # the other speakers are unchanged
    voices = generated_voices(opts, speakers)
    assert len(voices) == 9 and len(set(voices.values())) == 9  # a voice of its own each
    assert not {s.voice for s in gen} & {s.voice for s in base}
    lo, hi = ADULT_FORMANT_RANGE
    for s in gen:
        text = voices[s.variant]
        assert all(lo <= f <= hi for n, f in formant_factors(text).items() if 1 <= n <= 5)
        assert text == generated_voice(0, s.variant, s.gender)
    scale = {g: np.mean([np.mean([formant_factors(voices[s.variant])[n] for n in range(1, 6)])
                         for s in gen if s.gender == g]) for g in "fm"}
    assert scale["f"] > scale["m"] + 10  # female vocal tracts are shorter: higher formants
    # another corpus seed draws other voices
    assert generated_voice(1, "gen_f21", "f") != generated_voice(0, "gen_f21", "f")
    # their audio comes on top of the hours: the planned speakers' sentences do not change
    generator, lexicon = _generator()
    plain = plan_utterances(SynthOptions(hours=0.3), make_speakers(SynthOptions(hours=0.3)), generator, lexicon)
    more_opts = SynthOptions(hours=0.3, generated_test_speakers=4, generated_utts_per_speaker=3)
    more = plan_utterances(more_opts, make_speakers(more_opts), generator, lexicon)
    assert [(u.utt, u.spoken) for u in more if not u.speaker.generated] == [(u.utt, u.spoken) for u in plain]
    extra = [u for u in more if u.speaker.generated]
    assert len(extra) == 4 * 3
    train_text = {u.spoken for u in more if u.split == "train"}
    assert not train_text & {u.spoken for u in extra}


def test_generated_voices_take_whole_settings_of_bundled_voices() -> None:
    from asrdistill.data.synth.corpus import generated_voices, held_out_variants, voices_data_dir
    from asrdistill.lang.espeak import Espeak, variant_settings, variant_text

    opts = SynthOptions(generated_test_speakers=144)  # the recipe's
    many = generated_voices(opts, make_speakers(opts))
    # every setting besides formants and pitch is one of a bundled held-out voice of the same gender
    donors = {g: [variant_settings(variant_text(v)) for v in held_out_variants(g)] for g in "fm"}
    seen: set[str] = set()
    for name, text in many.items():
        gender = "f" if "gender female" in text else "m"
        for setting, lines in variant_settings(text).items():
            assert any(d.get(setting) == lines for d in donors[gender]), (name, setting, lines)
            seen.add(setting)
    assert {"voicing", "flutter", "tone", "stressAdd", "consonants"} <= seen

    # settings that only work together come from one voice: a sentence takes about as long as with a bundled
    # voice (one voice's stressLength with another's stressAdd drew utterances out to 45-60 s)
    def seconds(variant: str, data_path: str | None = None) -> float:
        with Espeak(data_path=data_path) as es:
            es.set_voice(f"en-us+{variant}")
            es.set_parameters(rate=175, pitch=50, pitch_range=50)
            return len(es.synthesize("the quick brown fox jumps over the lazy dog", seed=1).samples) / es.sample_rate

    longest = max(seconds(v) for g in "fm" for v in held_out_variants(g))
    with voices_data_dir(many) as data_path:
        assert max(seconds(v, data_path) for v in many) < 1.25 * longest


def test_a_generated_voice_is_heard_and_an_unknown_variant_is_an_error() -> None:
    import dataclasses

    from asrdistill.lang.espeak import Espeak

    opts = SynthOptions(generated_test_speakers=2)
    spk = next(s for s in make_speakers(opts) if s.generated)
    spec = UtteranceSpec(f"{spk.id}-00000", "test", spk, ["hello"], "hello there.")
    lexicon = {"hello": ["HH", "AH", "L", "OW"]}
    own = render_utterance(spec, opts, lexicon, degrade=False).samples
    plain = dataclasses.replace(spk, voice="en-us", generated=False)
    base = render_utterance(dataclasses.replace(spec, speaker=plain), opts, lexicon, degrade=False).samples
    assert len(own) != len(base) or not np.array_equal(own, base)  # not the base voice
    assert np.array_equal(own, render_utterance(spec, opts, lexicon, degrade=False).samples)
    with Espeak() as es, pytest.raises(ValueError, match="no voice variant 'gen_f21'"):
        es.set_voice("en-us+gen_f21")  # espeak-ng itself would fall back to the base voice


def test_more_speakers_than_variants_reuse_only_training_variants() -> None:
    speakers = make_speakers(SynthOptions(num_speakers=60))
    held = {s.voice for s in speakers if s.split != "train"}
    assert len(held) == 12
    assert not held & {s.voice for s in speakers if s.split == "train"}


def test_splits_speaker_disjoint_and_sentences_unseen(corpus: Path) -> None:
    dds = {s: read_data_dir(corpus / "data" / s) for s in SPLITS}
    spks = {s: set(dd.spks) for s, dd in dds.items()}
    assert all(spks.values())
    assert not (spks["train"] & spks["dev"]) and not (spks["train"] & spks["test"]) and not (spks["dev"] & spks["test"])
    train_text = set(dds["train"].text.values())
    for split in ("dev", "test"):
        assert not train_text & set(dds[split].text.values())
    for dd in dds.values():
        assert dd.spk2gender and set(dd.spk2gender) == set(dd.spks)
        for rec, path in dd.wav_scp.items():
            assert Path(path).is_absolute() and Path(path).is_file()
            info = soundfile.info(path)
            assert info.samplerate == 16000 and info.subtype == "PCM_16" and info.channels == 1
    summary = json.loads((corpus / "summary.json").read_text())
    assert summary["speakers"] == {s: sorted(spks[s]) for s in SPLITS}
    assert 0.015 < summary["hours"]["total"] < 0.03


def test_lexicon_covers_transcripts_and_matches_ctm(corpus: Path) -> None:
    dd_dict = read_dict_dir(corpus / "dict")
    assert set(dd_dict.nonsilence_phones) == set(ARPABET) and dd_dict.optional_silence == "SIL"
    prons: dict[str, set[str]] = {}
    for word, _, phones in dd_dict.lexicon:
        assert set(phones) <= set(ARPABET) or phones == ("SPN",)
        prons.setdefault(word, set()).add(" ".join(phones))
    assert prons["<UNK>"] == {"SPN"}
    assert len(prons) > 900
    utts = _utterances(corpus)
    for split in SPLITS:
        dd = read_data_dir(corpus / "data" / split)
        ctm = _read_ctm(corpus / "data" / split / "phones.ctm")
        for utt, text in dd.text.items():
            words = text.split()
            assert all(w in prons for w in words), utt
            spoken = utts[utt]["prons"]
            assert len(spoken) == len(words)
            if split == "train":  # the phones of phones.ctm are, word by word, lexicon pronunciations
                assert all(p in prons[w] for w, p in zip(words, spoken)), (utt, words, spoken)
            assert " ".join(p for _, _, p in ctm[utt] if p != "SIL") == " ".join(spoken)
    # nothing heard only in dev/test reaches the lexicon: every entry is a citation form or a training variant
    from asrdistill.data.synth.corpus import build_lexicon

    citation, _, _ = build_lexicon({w for w in prons if w != "<UNK>"})
    train_text = read_data_dir(corpus / "data" / "train").text
    heard = {(w, p) for utt, text in train_text.items() for w, p in zip(text.split(), utts[utt]["prons"])}
    for word, variants in prons.items():
        for p in variants:
            assert word == "<UNK>" or p == " ".join(citation[word]) or (word, p) in heard, (word, p)


def test_ctm_covers_each_utterance_contiguously(corpus: Path) -> None:
    for split in SPLITS:
        dd = read_data_dir(corpus / "data" / split)
        ctm = _read_ctm(corpus / "data" / split / "phones.ctm")
        assert set(ctm) == set(dd.utts)
        for utt, segs in ctm.items():
            assert segs[0][0] == 0.0 and segs[0][2] == "SIL" and segs[-1][2] == "SIL"
            for (s0, d0, _), (s1, _, _) in zip(segs, segs[1:]):
                assert d0 > 0 and abs(s0 + d0 - s1) < 1e-6, utt
            info = soundfile.info(dd.wav_scp[utt])
            assert abs(segs[-1][0] + segs[-1][1] - info.frames / info.samplerate) <= 0.0011
            assert all(p in ARPABET or p == "SIL" for _, _, p in segs)
            assert sum(p != "SIL" for _, _, p in segs) >= 5


def test_ctm_onset_matches_audio_energy(corpus: Path) -> None:
    """The first phone starts where the (clean) speech energy rises: honest timings."""
    opts = SynthOptions(**TINY)
    dd = read_data_dir(corpus / "data" / "train")
    ctm = _read_ctm(corpus / "data" / "train" / "phones.ctm")
    for utt in dd.utts[:5]:
        clean = _rerender(corpus, opts, utt, degrade=False).astype(np.float64)
        frames = np.lib.stride_tricks.sliding_window_view(clean, 400)[::160]
        db = 10 * np.log10(np.sum(frames**2, axis=1) + 1e-9)
        onset = (np.argmax(db > db.max() - 35) * 160 + 200) / 16000
        first = next(s for s, _, p in ctm[utt] if p != "SIL")
        assert abs(onset - first) < 0.03, (utt, onset, first)


def _rerender(corpus: Path, opts: SynthOptions, utt: str, degrade: bool) -> np.ndarray:
    speakers = {s.id: s for s in make_speakers(opts)}
    dd = {s: read_data_dir(corpus / "data" / s) for s in SPLITS}
    split = next(s for s in SPLITS if utt in dd[s].text)
    words = dd[split].text[utt].split()
    spec = UtteranceSpec(utt, split, speakers[utt.split("-")[0]], words, _utterances(corpus)[utt]["spoken"])
    lexicon, _, _ = build_lexicon(set(words))
    return render_utterance(spec, opts, lexicon, degrade=degrade).samples


def test_snr_is_applied(corpus: Path) -> None:
    opts = SynthOptions(**TINY)
    utts = _utterances(corpus)
    dd = read_data_dir(corpus / "data" / "dev")
    measured = []
    for utt in dd.utts[:4]:
        noisy, _ = soundfile.read(dd.wav_scp[utt], dtype="int16")
        clean = _rerender(corpus, opts, utt, degrade=True)
        assert np.array_equal(clean, noisy)  # re-rendering reproduces the file
        clean = _rerender(corpus, opts, utt, degrade=False).astype(np.float64)
        noise = noisy.astype(np.float64) - clean
        lo, hi = utts[utt]["speech_region"]
        snr = 10 * np.log10(np.mean(clean[lo:hi] ** 2) / np.mean(noise**2))
        assert abs(snr - utts[utt]["snr_db"]) < 0.3, (utt, snr, utts[utt]["snr_db"])
        assert 5.0 - 0.3 <= snr <= 20.0 + 0.3
        measured.append(snr)
    assert max(measured) - min(measured) > 0.5  # drawn per utterance, not constant


def test_phone_segments_zero_length_and_rounding() -> None:
    # 'tool.' as espeak reports it: the l has no time of its own (same ms as the pause)
    events = [("t", 11), ("'u:", 61), ("l", 300), ("_:", 300), ("_", 307)]
    segs = phone_segments(events, 16000 * 400 // 1000, 16000)
    assert [p for _, _, p in segs] == ["SIL", "T", "UW", "L", "SIL", "SIL"]
    assert segs[2][0] == pytest.approx(0.061) and segs[3][1] == pytest.approx(0.300)
    assert segs[2][1] == pytest.approx(segs[3][0]) == pytest.approx((0.061 + 0.300) / 2)
    lines = ctm_lines("u", [(0.0, 0.0114, "SIL"), (0.0114, 0.0226, "T"), (0.0226, 0.4, "SIL")])
    assert lines == ["u 1 0.000 0.011 SIL", "u 1 0.011 0.012 T", "u 1 0.023 0.377 SIL"]


def test_finished_corpus_with_other_options_is_an_error(corpus: Path) -> None:
    from asrdistill.errors import UserFacingError

    with pytest.raises(UserFacingError, match="other options"):
        prepare_synth(corpus, nj=1, progress=False, **{**TINY, "hours": 0.05})


def test_more_generated_voices_than_espeak_lists_are_a_clear_error() -> None:
    from asrdistill.data.synth.corpus import generated_voices, voices_data_dir

    opts = SynthOptions(generated_test_speakers=200)
    with pytest.raises(UserFacingError, match="lists at most 349"):
        with voices_data_dir(generated_voices(opts, make_speakers(opts))):
            pass
