"""Training: recipes and loops for PRG's trainable parts (today the scene tagger, :mod:`prg.train.tagger`).

Submodules are imported where used, so importing ``prg.train`` itself pulls in nothing heavy.
"""
