"""Models are a shared encoder plus a task head (jiant-style).

A model directory (the Model artifact) holds:
  encoder/      config.json, model.safetensors and the tokenizer (save_pretrained)
  head.safetensors, head.json   the task head and its label map (absent for the `none` baseline)
Target fine-tuning loads encoder/ only, so intermediate heads are dropped and a new head is built.

`tiny` is the embedded default: an XLM-R-architecture encoder built from a small config, with a tokenizer
trained deterministically on the sample data. It is saved once into a cache directory and then loaded with
`from_pretrained`, exactly like a hub model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .errors import ConfigError
from .fsutil import fingerprint, read_json, write_json

TINY = "tiny"
CLUSTER_DEFAULT_MODEL = "FacebookAI/xlm-roberta-large"
TINY_CONFIG = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
                   max_position_embeddings=130, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
TINY_VOCAB = 1200
TINY_VERSION = 1  # bump when the tiny recipe (not the corpus) changes, so caches rebuild


def cache_dir() -> Path:
    """Model cache: XSTILTS_CACHE, else HF_HOME/xstilts (a PVC on the cluster), else ~/.cache/xstilts."""
    if os.environ.get("XSTILTS_CACHE"):
        return Path(os.environ["XSTILTS_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "xstilts"
    return Path.home() / ".cache" / "xstilts"


def train_tiny_tokenizer(texts: list[str]):
    """A byte-fallback-free BPE over SentencePiece-style (Metaspace) pieces, with XLM-R's special tokens and pair
    template. BPE rather than XLM-R's Unigram because the BPE trainer is deterministic and fast on a small corpus."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>"]  # XLM-R ids: <s>=0 <pad>=1 </s>=2 <unk>=3
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=TINY_VOCAB - 1, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    tok.add_special_tokens(["<mask>"])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                   cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                                   model_max_length=TINY_CONFIG["max_position_embeddings"] - 2)


def ensure_tiny_model(root: Path | None = None, seed: int = 0) -> Path:
    """Build the tiny pretrained encoder once (deterministically) and return its directory."""
    from transformers import XLMRobertaConfig, XLMRobertaModel

    from .sample_data import corpus

    root = root or cache_dir()
    texts = corpus()
    # The key covers the recipe and the corpus, so a changed sample generator rebuilds the model.
    path = root / f"tiny-xlmr-v{TINY_VERSION}-{fingerprint(TINY_CONFIG, TINY_VOCAB, seed, texts)}"
    if (path / "config.json").exists():
        return path
    tokenizer = train_tiny_tokenizer(texts)
    config = XLMRobertaConfig(vocab_size=len(tokenizer), pad_token_id=1, bos_token_id=0, eos_token_id=2,
                              type_vocab_size=1, **TINY_CONFIG)
    torch.manual_seed(seed)
    model = XLMRobertaModel(config, add_pooling_layer=False)
    # Parallel pipeline branches may build it at the same time: each writes its own temp dir and the first
    # rename wins; a later rename fails on the non-empty directory and the identical copy is dropped.
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=root))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.rename(tmp, path)
        except OSError:
            if not (path / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def resolve_pretrained(model_name: str, revision: str | None = None) -> tuple[str, str | None]:
    """Map a model name to something from_pretrained accepts."""
    if model_name == TINY:
        return str(ensure_tiny_model()), None
    return model_name, revision


def load_encoder(name_or_path: str, revision: str | None = None):
    """(encoder, tokenizer) from a hub id, a local dir, or `tiny`. Pooling layers are not used."""
    from transformers import AutoModel, AutoTokenizer

    path, revision = resolve_pretrained(name_or_path, revision)
    kwargs = {"revision": revision} if revision else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        encoder = AutoModel.from_pretrained(path, add_pooling_layer=False, **kwargs)
    except OSError as e:
        raise ConfigError(f"cannot load pretrained model {name_or_path!r}: {e}") from None
    return encoder, tokenizer


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


class EncoderWithHead(nn.Module):
    def __init__(self, encoder: nn.Module, head: ClassificationHead):
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(hidden)


def new_classifier(encoder: nn.Module, num_labels: int) -> EncoderWithHead:
    return EncoderWithHead(encoder, ClassificationHead(encoder.config.hidden_size, num_labels,
                                                       encoder.config.hidden_dropout_prob))


def save_model_dir(out: Path, encoder: nn.Module, tokenizer, head: nn.Module | None = None,
                   head_info: dict | None = None) -> None:
    """Write a model directory (call inside atomic_dir)."""
    encoder.save_pretrained(out / "encoder")
    tokenizer.save_pretrained(out / "encoder")
    if head is not None:
        save_file({k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}, out / "head.safetensors")
        write_json(out / "head.json", head_info or {})


def load_classifier(model_dir: str | Path) -> tuple[EncoderWithHead, object, dict]:
    """A full classifier (encoder + trained head) from a model directory, for export and evaluation."""
    model_dir = Path(model_dir)
    if not (model_dir / "head.json").exists():
        raise ConfigError(f"{model_dir} has no task head (head.json): is it a target-task model?")
    info = read_json(model_dir / "head.json")
    encoder, tokenizer = load_encoder(str(model_dir / "encoder"))
    model = new_classifier(encoder, len(info["labels"]))
    model.head.load_state_dict(load_file(model_dir / "head.safetensors"))
    return model.eval(), tokenizer, info
