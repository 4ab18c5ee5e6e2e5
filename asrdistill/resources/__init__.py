"""Data files shipped with the package (word lists of the synthetic corpus)."""
