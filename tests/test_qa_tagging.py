"""QA windowing/decoding (xstilts.kinds.qa) and tag alignment/decoding (xstilts.kinds.tagging) on real fast tokenizers:
the tiny XLM-R-style one (BPE + Metaspace + NFKC) and a BERT-style WordPiece one built here."""

from __future__ import annotations

import random

import numpy as np
import pytest

from xstilts.kinds.qa import QAFeatures, qa_features, qa_predict
from xstilts.kinds.base import IGNORE_INDEX
from xstilts.kinds.tagging import tag_decode, tag_features

# Words from several scripts, plus characters whose offsets NFKC/normalizers bend: a decomposed é (e + U+0301,
# composed by NFKC so the mark is in no token), ligature ﬁ and ㎏ (expanded), Ǆ, İ (two chars when lowercased),
# ZWJ sequences and emoji.
WORDS = ["Paris", "the", "river", "flows", "Москва", "столица", "東京", "北京大学", "مرحبا", "القاهرة",
         "Cafe\u0301", "café", "naïve", "😀", "👨‍👩‍👧", "ﬁne", "㎏", "Ǆemal", "İstanbul", "Straße", "x\u200dy",
         "12,5", "(a)", "don't", "Hello", "world", "es", "der", "la", "über", "élève", "ĉu", "ẞ", "Ⅻ"]
SEPARATORS = [" ", " ", " ", "  ", "\t", "\n", " \n ", "   "]


def _wordpiece_tokenizer():
    """A BERT-style fast tokenizer: lowercasing + accent-stripping normalizer, whitespace/punctuation splitting,
    WordPiece (whole unknown words → [UNK]) and a [CLS] A [SEP] B [SEP] template."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    rng = random.Random(0)
    corpus = [" ".join(rng.choices(WORDS[:12], k=8)) for _ in range(200)]
    tok.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials,
                                                              show_progress=False))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=512)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import AutoTokenizer

    from xstilts.models.tiny import ensure_tiny_model

    return AutoTokenizer.from_pretrained(ensure_tiny_model(tmp_path_factory.mktemp("tiny")))


@pytest.fixture(scope="module")
def wordpiece():
    return _wordpiece_tokenizer()


@pytest.fixture(scope="module", params=["tiny", "wordpiece"])
def tokenizer(request):
    return request.getfixturevalue(request.param)


# --- helpers ----------------------------------------------------------------------------------------------------

def _one_hot(features: QAFeatures, starts, ends, width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    width = width or max(len(ids) for ids in features.input_ids)
    start_logits, end_logits = np.zeros((len(starts), width)), np.zeros((len(ends), width))
    start_logits[np.arange(len(starts)), starts] = 1.0
    end_logits[np.arange(len(ends)), ends] = 1.0
    return start_logits, end_logits


def _roundtrip(tokenizer, questions, contexts, answers, **kwargs) -> tuple[QAFeatures, list[str], list[bool]]:
    """Features, predictions from one-hot logits at the training targets, and whether each example's answer fits
    some window."""
    features = qa_features(tokenizer, questions, contexts, answers, **kwargs)
    predictions = qa_predict(features, *_one_hot(features, features.start_positions, features.end_positions),
                             contexts, max_answer_length=1000)
    fits = [False] * len(contexts)
    for w, i in enumerate(features.example_index):
        fits[i] |= bool(features.start_positions[w] > 0)
    return features, predictions, fits


def _example(rng: random.Random, n_words: int) -> tuple[str, str, dict]:
    """(question, context, answer) with the answer a run of whole words of the context."""
    words = rng.choices(WORDS, k=n_words)
    seps = [rng.choice(SEPARATORS) for _ in range(n_words - 1)] + [""]
    lead, trail = rng.choice(["", "", " ", "\n "]), rng.choice(["", "", " ", " .", " \t"])
    first = rng.randrange(n_words)
    last = min(n_words - 1, first + rng.randrange(4))
    context, start, end = lead, 0, 0
    for k, (word, sep) in enumerate(zip(words, seps)):
        if k == first:
            start = len(context)
        context += word
        if k == last:
            end = len(context)
        context += sep
    context += trail
    question = rng.choice(["", " ", "\t"]) + " ".join(rng.choices(WORDS, k=rng.randint(1, 8))) + "?"
    return question, context, {"text": context[start:end], "answer_start": start}


# --- QA features ------------------------------------------------------------------------------------------------

def test_windows_overlap_and_cover_the_context(tokenizer):
    context = " ".join(f"w{k} Paris Москва" for k in range(60))
    features = qa_features(tokenizer, ["  Where is Paris?"], [context], None, max_length=40, doc_stride=8)
    assert features.start_positions is None and features.end_positions is None
    assert len(features.input_ids) > 3 and set(features.example_index) == {0}
    whole = tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    previous: list = []
    for ids, offsets in zip(features.input_ids, features.offsets):
        assert len(ids) <= 40 and len(offsets) == len(ids)
        assert offsets[0] is None and offsets[-1] is None  # <s>/[CLS] and the final </s>/[SEP]
        spans = [o for o in offsets if o is not None]
        positions = [p for p, o in enumerate(offsets) if o is not None]
        assert positions == list(range(positions[0], positions[-1] + 1))  # context tokens are contiguous
        if previous:
            assert spans[:8] == previous[-8:]  # doc_stride tokens of overlap
        previous = spans
    covered = [o for offsets in features.offsets for o in offsets if o is not None]
    assert set(covered) == {tuple(o) for o in whole}
    # The question is the same (left-stripped) in every window.
    question_ids = {tuple(ids[1:ids.index(ids[-1])]) for ids in features.input_ids}
    assert len(question_ids) == 1


def test_answer_in_a_later_window_and_at_the_edges(tiny):
    filler = " ".join(["the river flows"] * 30)
    contexts = [f"{filler} Москва столица {filler}", f"{filler} Москва столица", f"Москва столица {filler}",
                f"{filler} {filler} Москва столица {filler}"]
    answers = [[{"text": "Москва столица", "answer_start": c.index("Москва")}] for c in contexts]
    features, predictions, fits = _roundtrip(tiny, ["Where?"] * 4, contexts, answers, max_length=48, doc_stride=12)
    assert predictions == ["Москва столица"] * 4 and all(fits)
    for i, expected_windows in [(0, lambda ws: ws[0] == ws[-1] == 0), (1, lambda ws: ws[-1] > 0 and ws[0] == 0),
                                (2, lambda ws: ws[0] > 0 and ws[-1] == 0), (3, lambda ws: ws[:2] == [0, 0])]:
        windows = [int(s) for s, j in zip(features.start_positions, features.example_index) if j == i]
        assert len(windows) >= 3 and expected_windows(windows) and max(windows) > 0, (i, windows)
    # Training targets of windows that do not hold the whole answer point at <s>.
    assert (features.start_positions == 0).sum() > 0
    assert ((features.start_positions == 0) == (features.end_positions == 0)).all()


def test_unicode_whitespace_and_edge_answers(tokenizer):
    cases = [("東京は日本の首都です", "東京"), ("  leading spaces", "leading"), ("tabs\there\tand\nnewlines", "here"),
             ("trailing answer  ", "answer"), ("القاهرة هي عاصمة مصر", "مصر"), ("Un Cafe\u0301 noir", "Cafe\u0301"),
             ("émoji 👨‍👩‍👧 family", "👨‍👩‍👧"), ("poids 5 ㎏ net", "5 ㎏"), ("a ﬁne day", "ﬁne"),
             ("Ǆemal İstanbul", "Ǆemal İstanbul"), ("x\u200dy z", "x\u200dy"), ("end with mark e\u0301", "e\u0301"),
             ("Paris", "Paris"), ("  multiple   spaces   inside  ", "spaces   inside")]
    contexts = [c for c, _ in cases]
    answers = [[{"text": a, "answer_start": c.index(a)}] for c, a in cases]
    _, predictions, fits = _roundtrip(tokenizer, ["q?"] * len(cases), contexts, answers, max_length=64, doc_stride=16)
    assert all(fits)
    assert predictions == [a for _, a in cases]


@pytest.mark.parametrize("max_length,doc_stride,max_query_length", [(32, 4, 8), (48, 12, 16), (128, 40, 64)])
def test_round_trip_over_generated_examples(tokenizer, max_length, doc_stride, max_query_length):
    rng = random.Random(max_length)
    examples = [_example(rng, rng.randint(1, 40)) for _ in range(150)]
    questions, contexts, answers = zip(*examples)
    _, predictions, fits = _roundtrip(tokenizer, list(questions), list(contexts), [[a] for a in answers],
                                      max_length=max_length, doc_stride=doc_stride, max_query_length=max_query_length)
    assert sum(fits) >= 0.6 * len(examples)
    for prediction, answer, fit, context in zip(predictions, answers, fits, contexts):
        if fit:
            assert prediction == answer["text"].strip(), (context, answer)
        else:  # windows overlap by doc_stride tokens, so any span of up to doc_stride + 1 tokens fits one
            assert _n_tokens(tokenizer, context, answer) > doc_stride + 1, (context, answer)


def _n_tokens(tokenizer, context: str, answer: dict) -> int:
    """How many context tokens the (whitespace-stripped) answer overlaps."""
    start = answer["answer_start"] + len(answer["text"]) - len(answer["text"].lstrip())
    end = answer["answer_start"] + len(answer["text"].rstrip())
    offsets = tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return sum(1 for a, b in offsets if b > start and a < end)


def test_unanswerable_and_columnar_answers(tiny):
    contexts = ["Paris is in France.", "Москва столица."]
    answers = [[], {"text": ["столица"], "answer_start": [7]}]  # SQuAD v2 [] and HF datasets' columnar format
    features = qa_features(tiny, ["Where?", "What?"], contexts, answers, max_length=64, doc_stride=16)
    assert list(features.start_positions) == [0, features.start_positions[1]] and features.start_positions[1] > 0
    assert features.end_positions[0] == 0
    features = qa_features(tiny, ["Where?"], ["Paris"], [{"text": [], "answer_start": []}], max_length=64,
                           doc_stride=16)
    assert list(features.start_positions) == [0]


def test_question_is_stripped_and_truncated(tiny):
    long_question = "   " + " ".join(["Москва столица Paris"] * 40) + "?"
    features = qa_features(tiny, [long_question, "Paris?"], ["the river flows", "the river flows"], None,
                           max_length=64, doc_stride=8, max_query_length=10)
    for ids, offsets in zip(features.input_ids, features.offsets):
        first_context = next(p for p, o in enumerate(offsets) if o is not None)
        assert first_context - 3 <= 10  # <s> question </s></s>
    stripped = tiny("Paris?", add_special_tokens=False)["input_ids"]
    assert features.input_ids[1][1:1 + len(stripped)] == stripped
    assert features.input_ids[0][1:11] == tiny(long_question.lstrip(), add_special_tokens=False)["input_ids"][:10]


# --- QA decoding ------------------------------------------------------------------------------------------------

def test_predict_strips_metaspace_leading_space(tiny):
    context = " a  b"
    features = qa_features(tiny, ["q"], [context], None, max_length=32, doc_stride=4)
    offsets = features.offsets[0]
    first = next(p for p, o in enumerate(offsets) if o is not None)
    assert offsets[first] == (0, 2)  # "▁a" covers the leading space
    assert qa_predict(features, *_one_hot(features, [first], [first]), [context]) == ["a"]
    # A span made only of "▁" pieces is whitespace: the next best span is taken instead.
    space = first + 1
    assert context[offsets[space][0]:offsets[space][1]] == " "
    start_logits, end_logits = _one_hot(features, [space], [space])
    start_logits[0, first] = end_logits[0, first] = 0.5
    assert qa_predict(features, start_logits, end_logits, [context]) == ["a"]


def test_predict_constraints(tiny):
    context = "the river flows Москва столица Paris"
    features = qa_features(tiny, ["Where is Paris?"], [context], None, max_length=64, doc_stride=8)
    offsets = features.offsets[0]
    positions = [p for p, o in enumerate(offsets) if o is not None]
    width = 80
    start_logits, end_logits = np.zeros((1, width)), np.zeros((1, width))
    start_logits[0, 1:positions[0]] = end_logits[0, 1:positions[0]] = 100  # question tokens: never an answer
    start_logits[0, len(features.input_ids[0]):] = end_logits[0, len(features.input_ids[0]):] = 1000  # padding
    start_logits[0, positions[-1]] = 10  # best start is the last token ...
    end_logits[0, positions[0]] = 10  # ... best end the first: end < start is invalid
    start_logits[0, positions[2]] = end_logits[0, positions[4]] = 6  # 12 beats any 10 + 0
    expected = context[offsets[positions[2]][0]:offsets[positions[4]][1]].strip()
    assert qa_predict(features, start_logits, end_logits, [context]) == [expected]
    # Too long for max_answer_length: the best valid span is then a shorter one.
    n_tokens = positions[4] - positions[2] + 1
    short = qa_predict(features, start_logits, end_logits, [context], max_answer_length=n_tokens - 1)[0]
    assert short and short != expected and short in context
    # With n_best=1 only (last start, first end) is considered: no valid span.
    assert qa_predict(features, start_logits, end_logits, [context], n_best=1) == [""]


def test_predict_picks_the_best_window_and_handles_empty_contexts(tiny):
    context = " ".join(["the river flows"] * 20) + " Paris " + " ".join(["the river flows"] * 20)
    features = qa_features(tiny, ["Where?", "Empty?"], [context, ""], None, max_length=40, doc_stride=8)
    windows = [w for w, i in enumerate(features.example_index) if i == 0]
    assert len(windows) > 2 and features.example_index[-1] == 1
    start_logits, end_logits = np.zeros((len(features.input_ids), 40)), np.zeros((len(features.input_ids), 40))
    paris = context.index("Paris")
    covers = lambda o, char: o is not None and o[0] <= char < o[1]  # noqa: E731
    target = next(w for w in windows if any(covers(o, paris) for o in features.offsets[w])
                  and any(covers(o, paris + 4) for o in features.offsets[w]))
    start = next(p for p, o in enumerate(features.offsets[target]) if covers(o, paris))
    end = next(p for p, o in enumerate(features.offsets[target]) if covers(o, paris + 4))
    start_logits[target, start], end_logits[target, end] = 3.0, 2.0
    start_logits[windows[0], 5] = 4.0  # a better start alone does not win: start + end counts
    assert qa_predict(features, start_logits, end_logits, [context, ""]) == ["Paris", ""]


def test_qa_errors(tiny):
    with pytest.raises(ValueError, match="fast tokenizer"):
        qa_features(object(), ["q"], ["c"], None, max_length=64, doc_stride=16)
    with pytest.raises(ValueError, match="doc_stride .* must be smaller"):  # the tokenizer itself would panic
        qa_features(tiny, ["q"], ["the river flows " * 20], None, max_length=16, doc_stride=12)
    with pytest.raises(ValueError, match="example 1: doc_stride"):
        qa_features(tiny, ["q", "Москва столица Paris " * 5], ["c", "c"], None, max_length=40, doc_stride=10)
    with pytest.raises(ValueError, match="same length"):
        qa_features(tiny, ["q"], ["c", "d"], None, max_length=64, doc_stride=16)
    with pytest.raises(ValueError, match="example 0: answer .Paris. is not at answer_start=2"):
        qa_features(tiny, ["q"], ["in Paris"], [[{"text": "Paris", "answer_start": 2}]], max_length=64, doc_stride=16)
    with pytest.raises(ValueError, match="max_length .* exceeds"):
        qa_features(tiny, ["q"], ["c"], None, max_length=1000, doc_stride=16)
    features = qa_features(tiny, ["q"], ["the river"], None, max_length=64, doc_stride=16)
    with pytest.raises(ValueError, match="n_windows=1"):
        qa_predict(features, np.zeros((2, 64)), np.zeros((2, 64)), ["the river"])
    with pytest.raises(ValueError, match="shorter than the longest window"):
        qa_predict(features, np.zeros((1, 2)), np.zeros((1, 2)), ["the river"])


# --- tagging ----------------------------------------------------------------------------------------------------

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def test_labels_on_first_sub_token(tiny):
    tokens = [["Hello", "Москва", "столица", "東京"]]
    tags = [["O", "B-LOC", "I-LOC", "B-LOC"]]
    features = tag_features(tiny, tokens, tags, LABELS, max_length=64)
    enc = tiny(tokens, is_split_into_words=True)
    word_ids = enc.word_ids(0)
    assert features.input_ids == enc["input_ids"] and features.n_words == [4]
    starts = features.word_starts[0]
    assert starts == [word_ids.index(k) for k in range(4)]
    assert any(word_ids.count(k) > 1 for k in range(4))  # some words have continuation sub-tokens
    expected = [IGNORE_INDEX] * len(word_ids)
    for k, tag in enumerate(tags[0]):
        expected[starts[k]] = LABELS.index(tag)
    assert features.label_ids == [expected]
    assert features.label_ids[0][0] == features.label_ids[0][-1] == IGNORE_INDEX


def _tag_logits(features, n_labels: int, width: int | None = None) -> np.ndarray:
    width = width or max(len(ids) for ids in features.input_ids)
    logits = np.random.default_rng(0).normal(size=(len(features.input_ids), width, n_labels))
    for i, label_ids in enumerate(features.label_ids):
        for p, label in enumerate(label_ids):
            if label != IGNORE_INDEX:
                logits[i, p, label] = 100.0
    return logits


def test_tag_round_trip(tokenizer):
    rng = random.Random(1)
    tokens = [rng.choices(WORDS, k=rng.randint(1, 12)) for _ in range(200)]
    tags = [rng.choices(LABELS, k=len(sentence)) for sentence in tokens]
    features = tag_features(tokenizer, tokens, tags, LABELS, max_length=128)
    assert all(min(starts) >= 1 for starts in features.word_starts)  # every word kept
    assert tag_decode(features, _tag_logits(features, len(LABELS), width=130), LABELS) == tags


def test_truncated_and_empty_words_get_the_fill_label(tiny):
    tokens = [["Москва"] * 30, ["Paris", "", "\u200b", "world"], [], [""], ["東京", "👨‍👩‍👧", "Cafe\u0301"]]
    tags = [["B-LOC"] * 30, ["B-LOC", "B-PER", "I-PER", "O"], [], ["B-PER"], ["B-LOC", "O", "B-PER"]]
    features = tag_features(tiny, tokens, tags, LABELS, max_length=16)
    assert all(len(ids) <= 16 for ids in features.input_ids)
    assert features.n_words == [30, 4, 0, 1, 3]
    assert [len(starts) for starts in features.word_starts] == features.n_words
    assert -1 in features.word_starts[0] and features.word_starts[0][0] == 1  # truncated tail
    assert features.word_starts[1][1] == -1 and features.word_starts[3] == [-1]  # "" has no sub-token
    decoded = tag_decode(features, _tag_logits(features, len(LABELS)), LABELS, fill_label="O")
    assert [len(d) for d in decoded] == features.n_words
    for sentence_tags, starts, prediction in zip(tags, features.word_starts, decoded):
        assert prediction == [t if p >= 0 else "O" for t, p in zip(sentence_tags, starts)]
    assert decoded[2] == [] and decoded[3] == ["O"]
    # Evaluation: no tags, no label ids, same positions.
    unlabelled = tag_features(tiny, tokens, None, LABELS, max_length=16)
    assert unlabelled.label_ids is None and unlabelled.word_starts == features.word_starts


def test_tag_errors(tiny):
    with pytest.raises(ValueError, match="sentence 1: 2 tokens but 1 tags"):
        tag_features(tiny, [["a"], ["a", "b"]], [["O"], ["O"]], LABELS, max_length=16)
    with pytest.raises(ValueError, match=r"sentence 0: tags \['B-MISC'\] are not among"):
        tag_features(tiny, [["a"]], [["B-MISC"]], LABELS, max_length=16)
    with pytest.raises(ValueError, match="2 token sequences but 1 tag"):
        tag_features(tiny, [["a"], ["b"]], [["O"]], LABELS, max_length=16)
    with pytest.raises(ValueError, match="duplicates"):
        tag_features(tiny, [["a"]], None, ["O", "O"], max_length=16)
    with pytest.raises(ValueError, match="fast tokenizer"):
        tag_features(object(), [["a"]], None, LABELS, max_length=16)
    features = tag_features(tiny, [["a", "b"]], None, LABELS, max_length=16)
    with pytest.raises(ValueError, match="n_labels=5"):
        tag_decode(features, np.zeros((1, 16, 3)), LABELS)
    with pytest.raises(ValueError, match="shorter than the longest"):
        tag_decode(features, np.zeros((1, 2, 5)), LABELS)
