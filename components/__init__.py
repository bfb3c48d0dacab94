"""Thin KFP components: one file per step, each calling one xstilts library function.

Each module exposes the plain function (also reachable as `<component>.python_func`) and a `@dsl.component`
built with DEFAULT_IMAGE; `pipelines.xstilts.build_pipeline(image=...)` rebuilds them for another image.
"""

DEFAULT_IMAGE = "ghcr.io/xstilts/xstilts:0.1.0"
