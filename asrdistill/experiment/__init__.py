"""The experiment: where a recipe's artifacts live, what each was made from, and which systems it holds.

Modules:
  layout       -- ExpLayout: every path of a recipe's data and exp dirs (recipes read it via ``asrdistill layout``)
  fingerprint  -- digests of files, data dirs and options: what a piece of work was made from
  step         -- Step: completion records with fingerprints; skip, redo or resume; leftovers of killed runs
  manifest     -- Manifest: the systems of an experiment (``exp/systems.json``) read by the results tables

Public names: ExpLayout, Manifest, Step, input_fingerprint, read_record, stale_inputs.
"""
from asrdistill.experiment.fingerprint import input_fingerprint
from asrdistill.experiment.layout import ExpLayout
from asrdistill.experiment.manifest import Manifest
from asrdistill.experiment.step import Step, read_record, stale_inputs

__all__ = ["ExpLayout", "Manifest", "Step", "input_fingerprint", "read_record", "stale_inputs"]
