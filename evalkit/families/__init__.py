"""Task families: the shared parts that benchmark plugins in `tasks/` are built from.

- `multiple_choice`: choices scored by log-likelihood (MMLU, C-Eval, RACE), with calibration.
- `choice_generation`: the same questions answered by generating a letter (chat and API models).
- `open_ended`: free-form answers (MT-Bench, AlpacaEval) before a judge scores them.
- `code`: pass@k aggregation for generated programs (HumanEval).
"""
