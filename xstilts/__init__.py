"""xstilts: English intermediate-task training for zero-shot cross-lingual transfer.

The core library. It never imports kfp: components/ and pipelines/ wrap it.
"""

__version__ = "0.1.0"
