"""Built-in backends, registered lazily so that heavy dependencies load only when used."""

from evalkit import registry

# Each entry is "module:factory"; a factory takes a ModelSpec and returns a Backend.
registry.backends.register("mock", "evalkit.backends.mock:create")
registry.backends.register("hf", "evalkit.backends.hf:create")
registry.backends.register("gguf", "evalkit.backends.llamacpp:create")
registry.backends.register("replay", "evalkit.backends.replay:create")
registry.backends.register("openai", "evalkit.backends.openai_api:create")
registry.backends.register("openai-compat", "evalkit.backends.openai_api:create")
