"""`python -m evalkit.lmeval ...`: lm-eval's own CLI with the `evalkit` model registered.

    python -m evalkit.lmeval run --model evalkit --model_args spec=hf:smollm2,dtype=float32 --tasks arc_easy
"""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from lm_eval.__main__ import cli_evaluate

        import evalkit.lmeval.model  # noqa: F401  (registers --model evalkit)
    except ImportError:
        from evalkit.lmeval.loading import INSTALL_HINT

        print(f"evalkit: error: {INSTALL_HINT}", file=sys.stderr)
        return 2
    cli_evaluate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
