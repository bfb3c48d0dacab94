"""The task catalog: importing this package registers every task, in a fixed order (XTREME targets, English
intermediates, code tasks). One module per family keeps the registry's types apart from the data they describe."""

# Import order is registration order.
from xstilts.tasks.catalog import xtreme  # noqa: F401
from xstilts.tasks.catalog import english  # noqa: F401
from xstilts.tasks.catalog import code  # noqa: F401
