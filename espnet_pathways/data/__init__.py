"""Data: the MLS-shaped corpus generator (:mod:`.mini_mls`) and the MLS data prep (:mod:`.mls`).

Import the submodules directly; this package imports nothing heavy.
"""
