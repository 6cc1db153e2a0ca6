"""lm-evaluation-harness interoperability (the `lmeval` extra: `pip install 'evalkit[lmeval]'`).

- `lmeval:<task-or-group>` tasks (evalkit.lmeval.tasks): lm-eval's task library run by evalkit.
- an lm-eval model class `evalkit` (evalkit.lmeval.model) and `python -m evalkit.lmeval ...`,
  lm-eval's own CLI with that model registered.
- `evalkit show RUN --format lmeval` (evalkit.lmeval.export) and `evalkit import-lmeval DIR`
  (evalkit.lmeval.importer).

Only this package imports `lm_eval` (an import contract in pyproject.toml), and only when used.
"""
