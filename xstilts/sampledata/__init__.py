"""The synthetic sample data: `generate` writes data/sample/ (the hubs' row formats, deterministic) and the tiny
models' tokenizer corpora shipped in xstilts/models/corpus/; `code_fixtures` holds the execution problems that the
tests and `xstilts code-eval --bench` run. A tool room: it may import the base modules (xstilts.io, xstilts.errors);
the runtime never imports it (the CLI, the benchmarks and the tests do), and the step cache leaves it out of its key.
"""
