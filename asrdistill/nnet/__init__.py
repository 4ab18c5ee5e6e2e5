"""Feed-forward DNN acoustic models for hybrid DNN-HMM systems.

Modules:
  config       -- architectures and training options without torch (``PRESETS``, ``DnnConfig``, ``DnnTrainConfig``)
  model        -- the ReLU MLP (``AcousticDnn``, ``build_model``, ``load_model``, ``save_model``)
  data         -- frames paired with pdf targets (``FrameDataset``, ``load_frame_dataset``, ``load_training_sets``)
  train        -- CE training in named steps with newbob (``train_model``)
  members      -- an ensemble's members (``train_ensemble``)
  ensemble     -- combining members (``Ensemble``, ``load_ensemble``)
  evaluate     -- frame accuracy and CE (``evaluate_frames``, ``frame_scores_per_utt``)
  loglikes     -- pdf log-likelihoods for decoding
  device       -- devices and autocast (``resolve_device``, ``autocast_context``)
  distributed  -- data-parallel training under torchrun (rank, world size, shards, collectives)
"""
