"""Evaluation and reporting: zero-shot scoring of an exported ONNX model in onnxruntime (zero_shot, runtime), sampled
code generation scored by execution with pass@k (generate, through codeexec), and the gather and report steps
(report). It may import the base modules, tasks, kinds, data, models and codeexec; not train, export, ops or the
tools (cli, bench, sampledata).
"""
