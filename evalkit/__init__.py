"""evalkit: evaluate and benchmark large language models with trustworthy numbers.

Every metric carries its sample count and a confidence interval; every run is resumable.
See README.md for the command line and docs/ for the architecture.
"""

from importlib import metadata

try:
    __version__ = metadata.version("evalkit")
except metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
