"""Built-in tasks. Importing this package registers them (it is evalkit's own plugin).

Each benchmark lives in its own folder with a README (source, license, prompt format,
metric, caveats). Task modules import only evalkit core.
"""

from evalkit.tasks import alpaca_eval, ceval, humaneval, mmlu, mt_bench, race  # noqa: F401  (imported to register)
