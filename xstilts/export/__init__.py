"""Export to ONNX: encoders with a task head (encoder), causal LMs as KV-cache decoders (decoder), the traced graphs
both reuse across models of one architecture (graphs), and the ONNX-vs-PyTorch parity checks both must pass before
anything is written (parity)."""
