"""Built-in backends, registered lazily so that heavy dependencies load only when used."""

from evalkit import registry

# Each entry is "module:factory"; a factory takes a ModelSpec and returns a Backend.
registry.backends.register("mock", "evalkit.backends.mock:create")
