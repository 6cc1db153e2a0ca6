"""`lmeval:<task-or-group>`: an lm-evaluation-harness task run by evalkit's runner.

The task is lm-eval's own object, loaded by its `TaskManager` (installed YAMLs, or the user's
with `-T include_path=DIR`): its contexts and few-shot samples (`fewshot_context`), its
requests (`construct_requests`), its filters and `process_results` per sample, and its
aggregations (`aggregate` in evalkit.lmeval.scoring) — so the numbers are lm-eval's by
construction, and evalkit adds n and CIs, per-sample logs, resume and the response cache.
A group keeps its subtasks (each a subtask of the evalkit task; sub-groups are categories).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from evalkit.errors import ConfigError
from evalkit.lmeval.convert import attach_responses, capability_of, to_requests
from evalkit.lmeval.loading import Loaded, jsonable, load_tasks
from evalkit.lmeval.scoring import aggregate, metric_name
from evalkit.log.records import SampleRecord
from evalkit.params import Param
from evalkit.task import Built, DataSource, Task, TaskData, TaskEntry, TaskResults
from evalkit.types import Response, Sample, Score, stable_hash

PREFIX = "lmeval:"
#: lm-eval's default fewshot_random_seed (lm_eval.defaults.DEFAULT_OTHER_SEED)
FEWSHOT_SEED = 1234
PARAMS = (Param("include_path", str, "", "a folder of your own lm-eval YAML tasks (lm-eval's --include_path)"),)


def task_entry_for(name: str) -> TaskEntry:
    """The registry's resolver for `lmeval:<name>` (evalkit.registry.tasks.register_prefix)."""
    lm_name = name[len(PREFIX):].strip()
    if not lm_name:
        raise ConfigError("task 'lmeval:' names no lm-eval task: write lmeval:<task-or-group>, e.g. lmeval:arc_easy")
    return TaskEntry(functools.partial(LmevalTask, name, lm_name), PARAMS, group="lmeval")


class LmevalTask(Task):
    """lm-eval's task (or group) `lm_name`; loaded, datasets included, when built."""

    description = "an lm-evaluation-harness task, run and scored by lm-eval's own code"
    limit_per_subtask = True  # lm-eval's --limit counts per task

    def __init__(self, name: str, lm_name: str, include_path: str = "") -> None:
        self.name = name
        self.lm_name = lm_name
        self.include_path = include_path
        self.loaded: Loaded = load_tasks(lm_name, include_path)
        self.prompt_format = f"lm-eval {lm_name}"
        # the docs, read once (lm-eval's eval_docs re-runs a task's process_docs on each access)
        self.docs: dict[str, list[Any]] = {leaf: list(t.eval_docs) for leaf, t in self.loaded.tasks.items()}
        types = {leaf: str(t.OUTPUT_TYPE) for leaf, t in self.loaded.tasks.items()}
        self.requires = frozenset(capability_of(leaf, kind) for leaf, kind in types.items())
        #: each subtask's num_fewshot as its YAML gives it (None: not given)
        self.yaml_fewshot: dict[str, int | None] = {leaf: t.config.num_fewshot for leaf, t in self.loaded.tasks.items()}
        for task in self.loaded.tasks.values():  # as lm-eval's simple_evaluate prepares them
            if task.get_config("num_fewshot") is None:
                task.set_config(key="num_fewshot", value=0)
            task.set_fewshot_seed(seed=FEWSHOT_SEED)
        # the run's --num-fewshot default: the YAMLs' value (a group whose subtasks differ: 0,
        # and each subtask then keeps its own unless --num-fewshot is given)
        values = {v or 0 for v in self.yaml_fewshot.values()}
        self.default_num_fewshot = values.pop() if len(values) == 1 else 0
        first = next(iter(self.loaded.tasks.values()))
        first_metric = next(iter(first.aggregation()), "acc")
        first_filter = first._filters[0].name if first._filters else "none"
        self.headline_metric = metric_name(f"{first_metric},{first_filter}")

    def config(self) -> dict[str, Any]:
        import lm_eval

        configs = {leaf: stable_hash(jsonable(t.dump_config()), 16) for leaf, t in self.loaded.tasks.items()}
        return {**super().config(), "lm_eval": getattr(lm_eval, "__version__", ""), "lmeval_configs": configs}

    def load(self, source: DataSource) -> TaskData:
        samples: list[Sample] = []
        for leaf, task in self.loaded.tasks.items():
            multiple_choice = task.OUTPUT_TYPE == "multiple_choice"
            for doc_id, doc in enumerate(self.docs[leaf]):
                samples.append(Sample(
                    id=f"{leaf}/{doc_id}", input=str(task.doc_to_text(doc)), target=jsonable(task.doc_to_target(doc)),
                    choices=tuple(str(c) for c in task.doc_to_choice(doc)) if multiple_choice else (),
                    subtask=leaf, metadata={"doc_id": doc_id, "doc": jsonable(doc)},
                ))
        origin = ", ".join(sorted({str(t.config.dataset_path) for t in self.loaded.tasks.values()}))
        return TaskData(tuple(samples), {}, f"lm-eval: {origin}")

    def select_shots(self, sample: Sample, data: TaskData, k: int) -> tuple[Sample, ...]:
        """lm-eval's sampler picks the shots when the prompt is built; the log records how many."""
        given = self.yaml_fewshot[sample.subtask]
        # lm-eval's rule: --num-fewshot overrides a YAML's value, except an explicit 0
        n = (given or 0) if k == self.default_num_fewshot or given == 0 else k
        if n and self._task(sample).sampler is None:
            raise ConfigError(f"--num-fewshot {n}: lm-eval task {sample.subtask!r} has no few-shot split")
        return tuple(Sample(id=f"lmeval-fewshot/{i}", input="") for i in range(n))

    def build(self, sample: Sample, shots: Sequence[Sample]) -> Built:
        task, doc = self._task(sample), self._doc(sample)
        context = task.fewshot_context(doc, num_fewshot=len(shots), gen_prefix=task.doc_to_prefix(doc))
        if not isinstance(context, str):
            raise ConfigError(f"lm-eval task {sample.subtask!r}: chat-formatted prompts are not supported")
        instances = self._instances(sample, context)
        return Built(context, tuple(r for inst in instances for r in to_requests(inst)))

    def score(self, sample: Sample, responses: Sequence[Response]) -> Score:
        task, doc = self._task(sample), self._doc(sample)
        # filters and metrics read the responses and the doc, not the context
        instances = self._instances(sample, "")
        attach_responses(instances, responses)
        for ensemble in task._filters:
            ensemble.apply(instances)
        metrics: dict[str, Any] = {}
        filtered: dict[str, Any] = {}
        for key in instances[0].filtered_resps:
            resps = [inst.filtered_resps[key] for inst in instances]
            for metric, value in task.process_results(doc, resps).items():
                metrics[f"{metric},{key}"] = jsonable(value)
            filtered[key] = jsonable(resps)
        head = next((k for k in metrics if metric_name(k) == self.headline_metric), next(iter(metrics)))
        value = metrics[head]
        return Score(value=float(value) if isinstance(value, (int, float)) else float("nan"),
                     extracted=next(iter(filtered.values()), None),
                     extras={"lmeval": metrics, "filtered_resps": filtered})

    def aggregate(self, records: Sequence[SampleRecord], seed: int = 0) -> TaskResults:
        return aggregate(self.loaded, records)

    def _task(self, sample: Sample) -> Any:
        return self.loaded.tasks[sample.subtask]

    def _doc(self, sample: Sample) -> Any:
        return self.docs[sample.subtask][int(sample.metadata["doc_id"])]

    def _instances(self, sample: Sample, context: str) -> list[Any]:
        task, doc = self._task(sample), self._doc(sample)
        built = task.construct_requests(doc=doc, ctx=context, metadata=(sample.subtask, sample.metadata["doc_id"],
                                                                        task.config.repeats))
        return built if isinstance(built, list) else [built]
