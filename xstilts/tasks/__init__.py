"""Tasks: the registry's types and look-ups (`registry`) and the catalog of declared tasks (`catalog`).

The catalog is imported here, so any import of `xstilts.tasks.registry` sees every task registered."""

from xstilts.tasks import catalog  # noqa: F401
