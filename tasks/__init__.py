"""Built-in tasks. Importing this package registers them (it is evalkit's own plugin).

Each benchmark lives in its own folder with a README (source, license, prompt format,
metric, caveats). Task modules import only evalkit core.
"""

from evalkit.tasks import (  # noqa: F401  (imported to register)
    alpaca_eval,
    ceval,
    crows_pairs,
    flores,
    generation,
    humaneval,
    mmlu,
    mt_bench,
    perplexity,
    race,
    realtoxicityprompts,
    seat,
    stereoset,
)
