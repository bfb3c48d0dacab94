"""Benchmarks behind `xstilts bench`: training throughput of our loop against the Hugging Face Trainer (train) and
evaluation speed (eval). A tool room: it may import every runtime room and sampledata; only the CLI imports it, and
the step cache leaves it out of its key.
"""
