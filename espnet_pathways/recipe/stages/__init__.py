"""What the recipe's stages run: ``python -m espnet_pathways.recipe.stages.<module>`` (rule: :mod:`espnet_pathways.recipe`)
and the parts of stage 12-13 without a command line (split/merge of decoding jobs, the phases' results table)."""
