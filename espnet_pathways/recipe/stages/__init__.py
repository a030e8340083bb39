"""The recipe's command lines: ``python -m espnet_pathways.recipe.stages.<module>`` (rule: :mod:`espnet_pathways.recipe`)."""
