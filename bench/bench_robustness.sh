#!/usr/bin/env bash
# The fuller robustness numbers of issue 20 (CPU, minutes each): paired perturbation report on
# all 57 MMLU subjects, circular / counterfactual / contrast on five subjects, and prompt-format
# spread for two models. Usage: bash bench/bench_robustness.sh [OUT_DIR]
set -euo pipefail
OUT=${1:-runs-robustness}
EK=${EVALKIT:-.venv/bin/evalkit}
SUBJ='subjects=human_sexuality|sociology|high_school_psychology|anatomy|virology'
"$EK" run --model hf:smollm2 --tasks 'mmlu,mmlu@typos(rate=0.1),mmlu@option_shuffle' --limit 5 \
    --output-dir "$OUT/paired" --no-progress
"$EK" robustness "$OUT/paired"
"$EK" run --model hf:smollm2 --tasks 'mmlu,mmlu@circular,mmlu@gender_swap,mmlu@none_of_the_above' -T "$SUBJ" \
    --limit 5 --output-dir "$OUT/more" --no-progress
"$EK" robustness "$OUT/more"
FORMATS='mmlu@format(name=lm_eval),mmlu@format(name=helm),mmlu@format(name=opencompass),mmlu@format(name=brackets),mmlu@format(name=continuation)'
for model in hf:smollm2 hf:gemma3-270m; do
    "$EK" run --model "$model" --tasks "$FORMATS" -T "$SUBJ" --limit 4 --output-dir "$OUT/spread" --no-progress
done
"$EK" format-spread "$OUT/spread"
