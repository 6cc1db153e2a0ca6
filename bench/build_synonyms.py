"""Builds evalkit/perturb/data/synonyms.json from WordNet 3.0 (Debian's `wordnet-base`).

For each adjective, adverb and verb lemma that occurs in WordNet's sense-tagged corpus, the
other single-word lemmas of its most frequent synset (the first in index.<pos>) in its most
often tagged part of speech, kept when they are sense-tagged too (common words). Run: `python bench/build_synonyms.py [WN_DIR]`.
WordNet 3.0 Copyright 2006 by Princeton University (WordNet 3.0 license; see the JSON's notice).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

POS = ("adj", "adv", "verb")
OUT = Path(__file__).resolve().parents[1] / "evalkit" / "perturb" / "data" / "synonyms.json"
NOTICE = ("Derived from WordNet 3.0 (first synset of each sense-tagged adjective, adverb and verb). "
          "WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved. Used under the "
          "WordNet 3.0 license, which permits use, copying, modification and distribution without fee "
          "provided this notice appears; THE DATABASE IS PROVIDED 'AS IS' WITHOUT WARRANTIES.")


def _index(folder: Path, pos: str) -> dict[str, tuple[int, int]]:
    """lemma -> (tagged sense count, offset of the first synset)."""
    out = {}
    for line in (folder / f"index.{pos}").read_text(encoding="latin-1").splitlines():
        if line.startswith(" "):
            continue
        parts = line.split()
        p_cnt = int(parts[3])
        tagged = int(parts[5 + p_cnt])
        out[parts[0]] = (tagged, int(parts[6 + p_cnt]))
    return out


def _synset_words(data: bytes, offset: int) -> list[str]:
    line = data[offset:data.index(b"\n", offset)].decode("latin-1").split()
    count = int(line[3], 16)
    return [line[4 + 2 * i].split("(")[0].lower() for i in range(count)]


def build(folder: Path) -> dict[str, list[str]]:
    """A word in several parts of speech takes the synonyms of the one it is most often
    tagged as ("true" is an adjective, not the adverb "admittedly")."""
    indexes = {pos: _index(folder, pos) for pos in POS}
    table: dict[str, list[str]] = {}
    best: dict[str, int] = {}
    for pos in POS:
        index = indexes[pos]
        data = (folder / f"data.{pos}").read_bytes()
        for lemma, (tagged, offset) in index.items():
            if tagged == 0 or "_" in lemma or len(lemma) < 3 or not lemma.isalpha():
                continue
            if tagged <= best.get(lemma, 0):
                continue
            words = sorted({w for w in _synset_words(data, offset)
                            if w != lemma and w.isalpha() and index.get(w, (0, 0))[0] > 0})
            best[lemma] = tagged
            table[lemma] = words
    return {k: v for k, v in sorted(table.items()) if v}


if __name__ == "__main__":
    wn = Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/wordnet")
    table = build(wn)
    OUT.write_text(json.dumps({"notice": NOTICE, "source": "WordNet 3.0 (Debian wordnet-base)",
                               "synonyms": table}, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{len(table)} words -> {OUT}")
