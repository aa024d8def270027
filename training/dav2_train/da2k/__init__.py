"""``dav2-train da2k``: DA-2K style relative-depth benchmarks from your own images.

The paper's recipe in three sub-commands: ``propose`` (segments → point pairs →
expert votes; unanimous, confident pairs are labelled automatically), ``annotate``
(a local web page where a person decides the rest) and ``evaluate`` (pair accuracy
of any checkpoint on a DA-2K ``annotations.json``, the official one included).
"""
