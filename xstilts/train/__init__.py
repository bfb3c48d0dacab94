"""Training: the fine-tuning steps (finetune), the training loop (loop) and its helpers (batching, checkpoint,
distributed, speed, result)."""
