"""The pretrained models: a model name resolved to weights and a tokenizer (encoder: XLM-R-style encoders; causal:
decoder LMs) and the built-in tiny models that the tests and sample runs use (tiny: their tokenizers train on the
corpora shipped in models/corpus/). It may import the base modules and tasks; not sampledata (which only writes the
corpora), data, train or anything above.
"""
