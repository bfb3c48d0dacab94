"""Task kinds: one module per kind (its `KindSpec`: fields, columns, validation, head, encoding, loss, prediction,
score, ONNX outputs, text-to-text form), the registry and entry points in `base`, the shared metrics in `metrics`.

Sits below `xstilts.tasks` (tasks are declared with a kind) and imports neither tasks nor torch at import time."""
