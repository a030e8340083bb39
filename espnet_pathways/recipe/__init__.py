"""The Python behind the recipe's stages (``egs2_mls_pathways/asr1``). Rule: a module with a command
line is in :mod:`.stages` (each stage ``asr.sh`` and ``local/*.sh`` run, and the steps one may run by
hand: decode, score, significance); the modules here, which the stages share, have none (phases
file, data dirs, jobs, launch, progress, sclite, trn, ...).
"""
