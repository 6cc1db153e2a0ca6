"""Importing this module registers the built-in wrappers (kept out of the package's
`__init__` so that `evalkit.task` can import the name parser without a cycle)."""

from evalkit.perturb import counterfactual, formats, options, text  # noqa: F401  (imported to register)
