"""Sandboxed execution of generated programs in six languages: toolchains and one program's run (languages), the
isolation (sandbox), and the HumanEval/MBXP-style harness that checks problem and sample files and computes pass@k
(harness). It may import only the base modules (errors, io); the harness's benchmark reads xstilts.sampledata's
fixtures lazily.
"""
