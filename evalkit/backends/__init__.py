"""Built-in backends: one registration line each. A backend's module declares everything about
it in its `INFO` (evalkit.backends.spec.BackendInfo); the module is imported only when the
backend is used or listed, and its heavy dependencies only when a model is created.
Third-party packages register theirs the same way from a module named in the
`evalkit.plugins` entry-point group."""

from evalkit import registry

registry.backends.register("mock", "evalkit.backends.mock:INFO")
registry.backends.register("hf", "evalkit.backends.hf:INFO")
registry.backends.register("gguf", "evalkit.backends.llamacpp:INFO")
registry.backends.register("replay", "evalkit.backends.replay:INFO")
registry.backends.register("openai", "evalkit.backends.openai_api:INFO")
registry.backends.register("openai-compat", "evalkit.backends.openai_api:INFO_COMPAT")
registry.backends.register("embedded", "evalkit.backends.split:INFO")
registry.backends.register("st", "evalkit.backends.sentence_encoder:INFO")
registry.backends.register("vllm", "evalkit.backends.vllm_backend:INFO")
