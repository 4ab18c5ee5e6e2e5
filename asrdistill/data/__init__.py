"""Kaldi data dirs and corpora.

Modules:
  kaldi_dir      -- read / write / validate / subset data dirs (``read_data_dir``, ``write_data_dir``,
                    ``validate_data_dir``, ``subset_data_dir``, ``DataDir``)
  make_data_dir  -- data dirs from a folder of audio files and transcript lists (``make_data_dir``)
  prepare        -- stage 1 of every recipe: validate and copy the data dirs and the dict dir
  summary        -- hours, speakers, utterances and frames per split
  synth          -- the built-in synthetic corpus (``prepare_synth``)
"""
