"""Export to ONNX: encoders with a task head (encoder), causal LMs as KV-cache decoders (decoder), and the
ONNX-vs-PyTorch parity checks both must pass before anything is written (parity)."""
