"""Acoustic features: Kaldi-compatible fbank (:mod:`.fbank`), per-speaker CMVN (:mod:`.cmvn`), the frame
store (:mod:`.store`), whole-data-dir extraction (:mod:`.extract`) and context windows (:mod:`.splice`)."""
