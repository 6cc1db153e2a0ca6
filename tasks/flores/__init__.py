"""FLORES-200 translation (NLLB Team, 2022): English, German, French and Simplified Chinese,
every direction between them, scored with sacrebleu's BLEU / chrF / TER (see README.md).

Samples: the devtest sentences (1,012 per language; line i of every language file translates
line i of the others); few-shot examples: the first k dev sentences of the same direction.
Read from `$EVALKIT_DATA_DIR/flores200/{dev,devtest}/<lang>.{dev,devtest}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import permutations
from pathlib import Path

from evalkit.data import local_dir, read_text
from evalkit.errors import DataError
from evalkit.families.text_generation import TextGenerationTask, metrics_param
from evalkit.params import Param
from evalkit.task import Built, DataSource, TaskData, register_task
from evalkit.types import GenerateRequest, GenerationParams, Sample

LANGUAGES = {"eng": ("eng_Latn", "English"), "deu": ("deu_Latn", "German"), "fra": ("fra_Latn", "French"),
             "zho": ("zho_Hans", "Chinese")}
DIRECTIONS = tuple(f"{a}-{b}" for a, b in permutations(LANGUAGES, 2))
#: FLORES sentences are at most ~100 tokens; small models that loop stop here
MAX_TOKENS = 128


class Flores(TextGenerationTask):
    name = "flores"
    version = "1"
    description = "FLORES-200 devtest translation between English, German, French and Chinese"
    prompt_format = ("completion: '<Src> sentence: {src}\\n<Tgt> translation: {tgt}' blocks, shots from dev "
                     "separated by blank lines; greedy, stop at newline")
    default_num_fewshot = 3

    def __init__(self, directions: Sequence[str] = DIRECTIONS, metrics: Sequence[str] = (),
                 max_tokens: int = MAX_TOKENS) -> None:
        super().__init__(metrics or ("bleu", "chrf", "ter"))
        self.directions = tuple(dict.fromkeys(directions))
        self.max_tokens = max_tokens

    def load(self, source: DataSource) -> TaskData:
        folder = local_dir(source, "flores200")
        if folder is None:
            where = f"{source.data_dir}/flores200" if source.data_dir else "$EVALKIT_DATA_DIR/flores200"
            raise DataError(f"no data for flores: put FLORES-200's dev/ and devtest/ folders in {where}")
        samples: list[Sample] = []
        fewshot: dict[str, tuple[Sample, ...]] = {}
        for direction in self.directions:
            src, tgt = direction.split("-")
            samples.extend(_pairs(folder, "devtest", src, tgt))
            fewshot[direction] = tuple(_pairs(folder, "dev", src, tgt))
        return TaskData(tuple(samples), fewshot, str(folder))

    def build(self, sample: Sample, shots: Sequence[Sample]) -> Built:
        src, tgt = sample.subtask.split("-")
        blocks = [_block(src, tgt, str(s.input), str(s.target)) for s in shots]
        blocks.append(_block(src, tgt, str(sample.input), ""))
        prompt = "\n\n".join(blocks)
        params = GenerationParams(max_tokens=self.max_tokens, temperature=0.0, stop=("\n",))
        return Built(prompt, (GenerateRequest(prompt, params),))


def _block(src: str, tgt: str, text: str, translation: str) -> str:
    block = f"{LANGUAGES[src][1]} sentence: {text}\n{LANGUAGES[tgt][1]} translation:"
    return f"{block} {translation}" if translation else block


def read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"no data for flores: {path} is missing")
    return read_text(path).rstrip("\n").split("\n")


def _pairs(folder: Path, split: str, src: str, tgt: str) -> list[Sample]:
    source = read_lines(folder / split / f"{LANGUAGES[src][0]}.{split}")
    target = read_lines(folder / split / f"{LANGUAGES[tgt][0]}.{split}")
    if len(source) != len(target):
        raise DataError(f"{folder / split}: {LANGUAGES[src][0]} has {len(source)} lines but "
                        f"{LANGUAGES[tgt][0]} has {len(target)}")
    direction = f"{src}-{tgt}"
    return [Sample(id=f"{direction}/{split}/{i}", input=s, target=t, subtask=direction,
                   metadata={"line": i, "split": split, "target_language": LANGUAGES[tgt][0]})
            for i, (s, t) in enumerate(zip(source, target, strict=True))]


register_task("flores", Flores, params=(
    Param("directions", str, DIRECTIONS, "translation directions SRC-TGT (list: eng-deu|deu-eng)",
          choices=DIRECTIONS, multiple=True),
    metrics_param(("bleu", "chrf", "ter")),
    Param("max_tokens", int, MAX_TOKENS, "longest translation in tokens", minimum=1),
))
