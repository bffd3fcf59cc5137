"""CLI sub-commands contributed by each area. Each module here defines ``register(cli)`` that adds
its commands to the root group (or to an existing group such as ``subscribers``).

Listed in ``MODULES`` so ``scheduler/cli.py`` can mount them without importing each by name.
"""

MODULES: tuple[str, ...] = ("subscribers", "engagement", "campaigns", "users", "content")
