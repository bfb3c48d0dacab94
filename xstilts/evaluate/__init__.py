"""Evaluation and reporting: zero-shot scoring of an exported ONNX model in onnxruntime (zero_shot, runtime), sampled
code generation scored by execution with pass@k (generate, through codeexec), the gather and report steps (report),
and the statistics behind the report's intervals and tests (statistics: numpy and scipy.stats only). It may import
the base modules, tasks, kinds, data, models and codeexec; not train, export, ops or the tools (cli, bench,
sampledata).
"""
