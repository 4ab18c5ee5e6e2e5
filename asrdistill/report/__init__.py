"""Recipe results.

Modules:
  select        -- choosing one of several models on dev (``choose_best_system``; never by test)
  significance  -- speaker-level (two-stage) bootstrap of WER and frame accuracy, per-speaker rates
  results       -- ``make_results``: paper Tables 1 and 5 from the systems manifest, with paired differences
"""
