"""The built-in synthetic corpus ``synth``: espeak-ng speech with noise, reverb and phone timings.

Entry point: :func:`asrdistill.data.synth.corpus.prepare_synth` (CLI ``asrdistill make-synth``).
"""
from asrdistill.data.synth.corpus import SynthCorpus, prepare_synth

__all__ = ["SynthCorpus", "prepare_synth"]
