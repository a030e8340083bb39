"""Python entry points of the recipe's stages (``egs2_mls_pathways/asr1``)."""
