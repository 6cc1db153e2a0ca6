"""LLM-as-judge and human evaluation (pairwise with position swap, single grading).

Installed as evalkit.judges. Judges register in evalkit.registry.judges.
"""
