"""Task wrappers for robustness: perturbations (`evalkit.perturb.text`, `.options`,
`.counterfactual`), circular evaluation (`.circular`) and prompt formats (`.formats`), named
in the task list as `task@name(key=value,...)` (`.spec`) and built by `.wrap`. The built-in
wrappers register when `.builtin` is imported (on first use); see docs/perturbations.md."""
