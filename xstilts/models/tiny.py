"""The built-in tiny models, built once (deterministically) into the cache: a tiny XLM-R-style encoder (`tiny`) and
a tiny Llama-style causal LM (`tiny-causal`), with BPE tokenizers trained on the corpora shipped in models/corpus/
(written from the sample-data generator by xstilts.sampledata.generate.write_corpora; this module does not import
the generator). A model's cache folder is named by a hash of its recipe and its corpus."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from xstilts.io import fingerprint
from xstilts.env import cache_dir
import os
import tempfile


TINY = "tiny"  # the tiny encoder, built in code (not a hub id)
TINY_CAUSAL = "tiny-causal"
EOS_TOKEN, PAD_TOKEN = "<|endoftext|>", "<|pad|>"
TINY_CAUSAL_CONFIG = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=2, max_position_embeddings=2048, rms_norm_eps=1e-6,
                          tie_word_embeddings=True)
TINY_CAUSAL_VOCAB = 2048
TINY_CAUSAL_VERSION = 1  # bump when the recipe (not the corpus) changes, so caches rebuild


# A fixed code corpus in the six execution languages, so the tiny tokenizer has merges for code (indentation,
# braces, keywords) even before any code task's sample data exists.
CODE_CORPUS = (
    'def add(a, b):\n    """Return the sum of a and b."""\n    return a + b\n',
    "def is_palindrome(text: str) -> bool:\n    cleaned = [c.lower() for c in text if c.isalnum()]\n"
    "    return cleaned == cleaned[::-1]\n",
    "def count_words(sentence):\n    counts = {}\n    for word in sentence.split():\n"
    "        counts[word] = counts.get(word, 0) + 1\n    return counts\n\n\nprint(count_words('a b a'))\n",
    "from typing import List\n\n\ndef running_max(numbers: List[int]) -> List[int]:\n    result, best = [], None\n"
    "    for n in numbers:\n        best = n if best is None else max(best, n)\n        result.append(best)\n"
    "    return result\n\n\nif __name__ == '__main__':\n    assert running_max([1, 3, 2]) == [1, 3, 3]\n",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n"
    "        self.items.append(item)\n\n    def pop(self):\n        return self.items.pop()\n",
    "function add(a, b) {\n  return a + b;\n}\n\nconsole.log(add(2, 3));\n",
    "const isPalindrome = (text) => {\n  const cleaned = text.toLowerCase().replace(/[^a-z0-9]/g, '');\n"
    "  return cleaned === cleaned.split('').reverse().join('');\n};\nmodule.exports = { isPalindrome };\n",
    "function countWords(sentence: string): Map<string, number> {\n  const counts = new Map<string, number>();\n"
    "  for (const word of sentence.split(' ')) {\n    counts.set(word, (counts.get(word) ?? 0) + 1);\n  }\n"
    "  return counts;\n}\n",
    "import java.util.*;\n\nclass Problem {\n    public static int add(int a, int b) {\n        return a + b;\n"
    "    }\n\n    public static void main(String[] args) {\n        assert add(2, 3) == 5;\n"
    "        System.out.println(add(2, 3));\n    }\n}\n",
    "import java.util.*;\n\nclass RunningMax {\n    public static List<Integer> runningMax(List<Integer> numbers) {\n"
    "        List<Integer> result = new ArrayList<>();\n        int best = Integer.MIN_VALUE;\n"
    "        for (int n : numbers) {\n            best = Math.max(best, n);\n            result.add(best);\n"
    "        }\n        return result;\n    }\n}\n",
    "#include <bits/stdc++.h>\nusing namespace std;\n\nlong add(long a, long b) {\n    return a + b;\n}\n\n"
    "int main() {\n    assert(add(2, 3) == 5);\n    cout << add(2, 3) << endl;\n    return 0;\n}\n",
    "#include <string>\n#include <vector>\n\nstd::vector<int> running_max(const std::vector<int>& numbers) {\n"
    "    std::vector<int> result;\n    int best = INT_MIN;\n    for (int n : numbers) {\n"
    "        best = std::max(best, n);\n        result.push_back(best);\n    }\n    return result;\n}\n",
    'package main\n\nimport "fmt"\n\nfunc Add(a int, b int) int {\n\treturn a + b\n}\n\nfunc main() {\n'
    '\tfmt.Println(Add(2, 3))\n}\n',
    "package main\n\nimport \"strings\"\n\n// CountWords returns how often each word occurs.\n"
    "func CountWords(sentence string) map[string]int {\n\tcounts := map[string]int{}\n"
    "\tfor _, word := range strings.Fields(sentence) {\n\t\tcounts[word]++\n\t}\n\treturn counts\n}\n",
)
# The tokenizers' training texts, written from the sample-data generator (xstilts.sampledata.generate.write_corpora)
# and shipped with the package: tiny-encoder.jsonl (every sample text) and tiny-causal.jsonl (the sample code tasks'
# prompts, solutions and tests), one JSON string a line.
CORPUS_DIR = Path(__file__).resolve().parent / "corpus"


def read_corpus(name: str) -> list[str]:
    """A shipped corpus file's texts, in order (split on "\\n" only: a text's own line breaks are JSON escapes)."""
    with open(CORPUS_DIR / name, encoding="utf-8", newline="\n") as f:
        return [json.loads(line) for line in f]


def causal_corpus() -> list[str]:
    """The tiny causal tokenizer's training text: the code corpus, the code tasks' sample prompts and solutions,
    and all sample text (natural-language prompts, e.g. HumanEval-XL style, are in many languages)."""
    return list(CODE_CORPUS) + read_corpus("tiny-causal.jsonl") + read_corpus("tiny-encoder.jsonl")


def train_causal_tokenizer(texts: list[str]):
    """Byte-level BPE (GPT-2 style: every string encodes, whitespace and newlines survive a round trip, which code
    needs), with an end-of-text token (eos, also bos) and a separate pad token; generation pads on the left."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=TINY_CAUSAL_VOCAB, special_tokens=[EOS_TOKEN, PAD_TOKEN],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS_TOKEN, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN,
                                   padding_side="left", model_max_length=TINY_CAUSAL_CONFIG["max_position_embeddings"])


def ensure_tiny_causal_model(root: Path | None = None, seed: int = 0) -> Path:
    """Build the tiny causal LM once (deterministically) and return its directory."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    root = root or cache_dir()
    texts = causal_corpus()
    # The key covers the recipe and the corpus, so a changed corpus file rebuilds the model.
    path = root / f"tiny-causal-v{TINY_CAUSAL_VERSION}-{fingerprint(TINY_CAUSAL_CONFIG, TINY_CAUSAL_VOCAB, seed, texts)}"
    if (path / "config.json").exists():
        return path
    tokenizer = train_causal_tokenizer(texts)
    config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **TINY_CAUSAL_CONFIG)
    torch.manual_seed(seed)
    return save_pretrained_once(path, LlamaForCausalLM(config), tokenizer)


# No attention dropout (as in Llama or ModernBERT): with it, training on CPU ran SDPA's unfused math path and drew a
# random mask over every attention matrix, about half of a tiny training step.
TINY_CONFIG = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
                   max_position_embeddings=130, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.0)
TINY_VOCAB = 1200
TINY_VERSION = 1  # bump when the tiny recipe (not the corpus) changes, so caches rebuild


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
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    root = root or cache_dir()
    texts = read_corpus("tiny-encoder.jsonl")
    # The key covers the recipe and the corpus, so a changed corpus file rebuilds the model.
    path = root / f"tiny-xlmr-v{TINY_VERSION}-{fingerprint(TINY_CONFIG, TINY_VOCAB, seed, texts)}"
    if (path / "config.json").exists():
        return path
    tokenizer = train_tiny_tokenizer(texts)
    config = XLMRobertaConfig(vocab_size=len(tokenizer), pad_token_id=1, bos_token_id=0, eos_token_id=2,
                              type_vocab_size=1, **TINY_CONFIG)
    torch.manual_seed(seed)
    return save_pretrained_once(path, XLMRobertaModel(config, add_pooling_layer=False), tokenizer)


def save_pretrained_once(path: Path, model, tokenizer) -> Path:
    """Save a built-in pretrained model (and tokenizer) to `path` unless an identical build is already there.
    Parallel pipeline branches may build it at the same time: each writes its own temp dir and the first rename
    wins; a later rename fails on the non-empty directory and the identical copy is dropped."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
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
