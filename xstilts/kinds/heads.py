"""The task heads (torch modules) the kind specs build: a sentence head, a span head and a token head.

Kept apart from the specs so that only building a model imports torch (`KindSpec.new_head` imports this lazily).
Parameter names are those of the saved heads (heads/<task>.safetensors): renaming one breaks old model directories.
"""

from __future__ import annotations

import torch
from torch import nn


class ClassificationHead(nn.Module):
    """RoBERTa's sentence head on the first (<s>) token: dense → tanh → dropout → projection."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        x = self.dropout(hidden[:, 0])
        x = torch.tanh(self.dense(x))
        return self.out_proj(self.dropout(x))


class SpanHead(nn.Module):
    """Extractive QA: a start and an end logit per token."""

    def __init__(self, hidden_size: int, num_labels: int = 2, dropout: float = 0.1):
        super().__init__()
        self.qa_outputs = nn.Linear(hidden_size, 2)

    def forward(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        start, end = self.qa_outputs(hidden).float().unbind(-1)
        return start, end


class TokenHead(nn.Module):
    """Tagging: a label distribution per token (trained and read on each word's first sub-token)."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(hidden))
