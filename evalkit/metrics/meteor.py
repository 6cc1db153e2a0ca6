"""METEOR (Banerjee & Lavie, 2005) through NLTK's `meteor_score`, with WordNet 3.0 from
Debian's `wordnet-base` package (/usr/share/wordnet) or an NLTK data folder.

NLTK's WordNet reader needs a `lexnames` file that Debian's package does not ship (its
contents are in the package's lexnames(5WN) man page), and its path-security check refuses
links out of the reader's folder. evalkit builds a reader folder under the user cache: copies
of the package's files (about 30 MB, once) plus that 45-line table. Where no WordNet is
found, METEOR raises "not available here: ..." rather than being left out silently.

Tokens: whitespace split (NLTK's tokenizers need punkt data that is not shipped); NLTK
lower-cases them. Corpus METEOR = the mean of sentence METEOR (NLTK has no corpus form).
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.errors import ConfigError

DEBIAN_WORDNET = Path("/usr/share/wordnet")
#: the files NLTK's WordNetCorpusReader opens (besides lexnames)
_NEEDED = ("data.noun", "data.verb", "data.adj", "data.adv", "index.noun", "index.verb", "index.adj",
           "index.adv", "noun.exc", "verb.exc", "adj.exc", "adv.exc")
#: WordNet 3.0's lexicographer files (lexnames(5WN)): number, name; category from the prefix
_LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling",
    "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person",
    "noun.phenomenon", "noun.plant", "noun.possession", "noun.process", "noun.quantity", "noun.relation",
    "noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition",
    "verb.communication", "verb.competition", "verb.consumption", "verb.contact", "verb.creation",
    "verb.emotion", "verb.motion", "verb.perception", "verb.possession", "verb.social", "verb.stative",
    "verb.weather", "adj.ppl",
)
_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


class MetricUnavailable(ConfigError):
    """A metric whose data or package is missing on this machine."""


def lexnames_text() -> str:
    return "".join(f"{i:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}\n" for i, name in enumerate(_LEXNAMES))


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "evalkit" / "wordnet-3.0"


def _reader_folder(source: Path) -> Path:
    """`source` itself if NLTK can read it, else a cache folder with its files plus lexnames."""
    if (source / "lexnames").is_file():
        return source
    folder = _cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for name in _NEEDED:
        copy = folder / name
        if copy.is_symlink() or not copy.is_file() or copy.stat().st_size != (source / name).stat().st_size:
            partial = copy.with_suffix(copy.suffix + ".tmp")
            shutil.copyfile(source / name, partial)
            partial.replace(copy)  # a killed copy never looks complete (nor does a link: NLTK refuses it)
    (folder / "lexnames").write_text(lexnames_text(), encoding="utf-8")
    return folder


@functools.cache
def wordnet(source: Path = DEBIAN_WORDNET) -> Any:
    """NLTK's WordNet reader over `source` (raises MetricUnavailable when it is missing)."""
    missing = [name for name in _NEEDED if not (source / name).is_file()]
    if missing:
        raise MetricUnavailable(
            f"METEOR is not available here: WordNet 3.0 not found in {source} (missing {missing[0]});"
            " install Debian's wordnet-base package (apt-get install wordnet-base)")
    try:
        import nltk
        from nltk.corpus.reader.wordnet import WordNetCorpusReader
    except ImportError:
        raise MetricUnavailable("METEOR is not available here: nltk is not installed (pip install 'evalkit[textgen]')") from None
    folder = _reader_folder(source)
    # NLTK only opens files under its data path (its path-security check resolves links)
    for allowed in (str(folder), str(source.resolve())):
        if allowed not in nltk.data.path:
            nltk.data.path.append(allowed)
    import warnings

    class EnglishWordNet(WordNetCorpusReader):  # type: ignore[misc]  # untyped NLTK base
        def map_wn(self, version: str = "wordnet") -> None:
            return None  # the mapping to other WordNet versions serves only multilingual data (OMW)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available": not used here
        return EnglishWordNet(str(folder), None)


def meteor_scores(hypotheses: Sequence[str], references: Sequence[str], source: Path = DEBIAN_WORDNET) -> list[float]:
    """NLTK METEOR per pair (alpha 0.9, beta 3, gamma 0.5: NLTK's defaults), in [0, 1]."""
    from nltk.translate.meteor_score import meteor_score

    reader = wordnet(source)
    return [float(meteor_score([r.split()], h.split(), wordnet=reader))
            for h, r in zip(hypotheses, references, strict=True)]
