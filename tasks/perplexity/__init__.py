"""Perplexity of a model on documents: rolling log-likelihood windows, lm-eval's wikitext metrics.

Each document is one `loglikelihood_rolling` request (evalkit.types.RollingLoglikelihoodRequest):
windows of `max_length` tokens, each predicting `stride` new tokens (stride 0 = max_length:
lm-eval's disjoint windows). Corpus metrics pool sums over documents, as lm-eval's
`wikitext` task does: token perplexity exp(-ΣLL/Σtokens), word perplexity exp(-ΣLL/Σwords)
(words: `re.split(r"\\s+", doc)`, lm-eval's count), byte perplexity exp(-ΣLL/Σbytes) and
bits per byte -ΣLL/Σbytes/ln 2 (UTF-8 bytes). CIs: percentile bootstrap over documents.

Documents: `-T path=FILE` — a `.jsonl` file (one object per line, field `text`) or a text
file (documents separated by blank lines). Default: the FLORES-200 English devtest sentences,
consecutive sentences of one article (same URL in metadata_devtest.tsv) joined by a space.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from evalkit.data import local_dir, read_jsonl, read_text
from evalkit.errors import DataError
from evalkit.log.records import SampleRecord
from evalkit.metrics.stats import bootstrap_interval
from evalkit.params import Param
from evalkit.task import Built, DataSource, Task, TaskData, TaskResults, register_task
from evalkit.types import (
    LOGLIKELIHOOD_ROLLING,
    MetricValue,
    Response,
    RollingLoglikelihoodRequest,
    Sample,
    Score,
)

RESAMPLES = 1000


class Perplexity(Task):
    name = "perplexity"
    version = "1"
    description = "perplexity over documents (rolling log-likelihood windows; lm-eval wikitext metrics)"
    requires = frozenset({LOGLIKELIHOOD_ROLLING})
    headline_metric = "word_perplexity"

    def __init__(self, path: str = "", max_length: int = 2048, stride: int = 0) -> None:
        self.path = Path(path).expanduser() if path else None
        self.max_length = max_length
        self.stride = stride or max_length
        if self.stride > max_length:
            from evalkit.errors import ConfigError

            raise ConfigError(f"task 'perplexity': -T stride={stride} is larger than -T max_length={max_length}")
        self.prompt_format = (f"the document's text, no prompt; rolling windows of {max_length} tokens, "
                              f"stride {self.stride}, first token after the BOS/EOS prefix")

    def load(self, source: DataSource) -> TaskData:
        if self.path is None:
            docs, origin = flores_documents(source), "flores200/devtest/eng_Latn.devtest (articles)"
        else:
            docs, origin = read_documents(self.path), str(self.path)
        samples = tuple(Sample(id=str(i), input=text, metadata={"words": count_words(text),
                               "bytes": len(text.encode("utf-8"))}) for i, text in enumerate(docs))
        return TaskData(samples, {}, origin)

    def build(self, sample: Sample, shots: Sequence[Sample]) -> Built:
        request = RollingLoglikelihoodRequest(str(sample.input), self.max_length, self.stride)
        return Built(str(sample.input), (request,))

    def score(self, sample: Sample, responses: Sequence[Response]) -> Score:
        r = responses[0]
        if r.logprob is None or r.num_tokens is None:
            raise ValueError(f"the backend returned no log-likelihood ({r.error or 'empty response'})")
        return Score(value=r.logprob, extras={"loglikelihood": r.logprob, "tokens": r.num_tokens,
                                              "words": sample.metadata["words"], "bytes": sample.metadata["bytes"]})

    def aggregate(self, records: Sequence[SampleRecord], seed: int = 0) -> TaskResults:
        rows = [r.score.extras for r in records if r.score is not None and r.error is None]
        if not rows:
            return TaskResults(overall={})
        table: NDArray[np.float64] = np.array([[x["loglikelihood"], x["tokens"], x["words"], x["bytes"]] for x in rows],
                                              dtype=float)
        overall = {name: _metric(name, table, column, transform, seed) for name, column, transform in METRICS}
        return TaskResults(overall=overall, details={"documents": len(rows), "tokens": int(table[:, 1].sum()),
                                                     "words": int(table[:, 2].sum()), "bytes": int(table[:, 3].sum())})


def _exp(x: float) -> float:
    return math.exp(x)


def _bits(x: float) -> float:
    return x / math.log(2)


#: (name, which count divides -ΣLL, what turns the mean NLL into the metric)
METRICS = (("token_perplexity", 1, _exp), ("word_perplexity", 2, _exp), ("byte_perplexity", 3, _exp),
           ("bits_per_byte", 3, _bits))


def _metric(name: str, table: NDArray[np.float64], column: int, transform: object, seed: int) -> MetricValue:
    fn = transform if callable(transform) else _exp

    def value(idx: NDArray[np.int64]) -> float:
        return float(fn(-table[idx, 0].sum() / table[idx, column].sum()))

    n = table.shape[0]
    low, high = bootstrap_interval(value, n, resamples=RESAMPLES, seed=seed)
    finite = not math.isnan(low)
    return MetricValue(name, value(np.arange(n)), n, low if finite else None, high if finite else None,
                       f"bootstrap over documents ({RESAMPLES})" if finite else "", higher_is_better=False,
                       note="pooled over documents: -sum(loglikelihood) / sum(count), as lm-eval's wikitext")


def count_words(text: str) -> int:
    return len(re.split(r"\s+", text))


def read_documents(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"-T path={path}: no such file")
    if path.suffix in (".jsonl", ".gz"):
        docs = []
        for line, row in read_jsonl(path):
            if not isinstance(row.get("text"), str) or not row["text"]:
                raise DataError(f"{path}:{line}: field 'text' is missing or not a non-empty string")
            docs.append(row["text"])
    else:
        docs = [d.strip() for d in re.split(r"\n\s*\n", read_text(path)) if d.strip()]
    if not docs:
        raise DataError(f"{path}: no documents")
    return docs


def flores_documents(source: DataSource) -> list[str]:
    folder = local_dir(source, "flores200")
    if folder is None:
        where = f"{source.data_dir}/flores200" if source.data_dir else "$EVALKIT_DATA_DIR/flores200"
        raise DataError(f"no data for perplexity's default corpus: put FLORES-200's devtest/ in {where}, or give -T path=FILE")
    sentences = read_text(folder / "devtest" / "eng_Latn.devtest").rstrip("\n").split("\n")
    urls = [line.split("\t")[0] for line in read_text(folder / "metadata_devtest.tsv").rstrip("\n").split("\n")[1:]]
    if len(urls) != len(sentences):
        raise DataError(f"{folder}: metadata_devtest.tsv has {len(urls)} rows for {len(sentences)} sentences")
    docs: list[list[str]] = []
    for i, sentence in enumerate(sentences):
        if i == 0 or urls[i] != urls[i - 1]:
            docs.append([])
        docs[-1].append(sentence)
    return [" ".join(d) for d in docs]


register_task("perplexity", Perplexity, params=(
    Param("path", str, "", "documents: a .jsonl file (field text) or a text file (blank-line separated); "
          "default: FLORES-200 English devtest articles"),
    Param("max_length", int, 2048, "tokens per window (the model's own limit caps it)", minimum=1),
    Param("stride", int, 0, "new tokens predicted per window (0: max_length, disjoint windows)", minimum=0),
))
