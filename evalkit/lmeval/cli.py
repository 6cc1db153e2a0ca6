"""`evalkit import-lmeval DIR`: a plugin command (registered lazily in evalkit.registry)."""

from __future__ import annotations

import argparse
from pathlib import Path


class ImportLmevalCommand:
    help = "read lm-eval output folders (results_*.json, samples_*.jsonl) into evalkit run logs"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("source", type=Path, metavar="DIR", help="an lm-eval --output_path folder")
        parser.add_argument("--output-dir", type=Path, default=Path("runs"),
                            help="where the evalkit logs go (default ./runs)")

    def run(self, args: argparse.Namespace) -> int:
        from evalkit.lmeval.importer import import_dir

        for path in import_dir(args.source, args.output_dir):
            print(f"wrote {path}")
        return 0


IMPORT_LMEVAL = ImportLmevalCommand()
