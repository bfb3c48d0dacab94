"""The XTREME target tasks (xnli, pawsx, xquad, mlqa, tydiqa, panx, udpos, bucc18, tatoeba; xcopa from
XTREME-R): their hub sources, languages and labels. Also the label sets and column maps the English intermediates
share with them (NLI, SQuAD, COPA), so each is declared once."""

from __future__ import annotations

from xstilts.kinds.base import MULTIPLE_CHOICE, PAIR, QA, RETRIEVAL, TAGGING
from xstilts.tasks.registry import HubSource, Task, register


XNLI_LANGUAGES = ("en", "ar", "bg", "de", "el", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")
PAWSX_LANGUAGES = ("en", "de", "es", "fr", "ja", "ko", "zh")
XQUAD_LANGUAGES = ("en", "es", "de", "el", "ru", "tr", "ar", "vi", "th", "zh", "hi")
MLQA_LANGUAGES = ("en", "es", "de", "ar", "hi", "vi", "zh")
TYDIQA_LANGUAGES = {"en": "english", "ar": "arabic", "bn": "bengali", "fi": "finnish", "id": "indonesian",
                    "ko": "korean", "ru": "russian", "sw": "swahili", "te": "telugu"}  # TyDiQA ids start with the name
PANX_LANGUAGES = ("af", "ar", "bg", "bn", "de", "el", "en", "es", "et", "eu", "fa", "fi", "fr", "he", "hi", "hu", "id",
                  "it", "ja", "jv", "ka", "kk", "ko", "ml", "mr", "ms", "my", "nl", "pt", "ru", "sw", "ta", "te", "th",
                  "tl", "tr", "ur", "vi", "yo", "zh")
UDPOS_LANGUAGES = {"af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "de": "German", "el": "Greek", "en": "English",
                   "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish", "fr": "French",
                   "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian", "id": "Indonesian", "it": "Italian",
                   "ja": "Japanese", "kk": "Kazakh", "ko": "Korean", "mr": "Marathi", "nl": "Dutch", "pt": "Portuguese",
                   "ru": "Russian", "ta": "Tamil", "te": "Telugu", "th": "Thai", "tl": "Tagalog", "tr": "Turkish",
                   "ur": "Urdu", "vi": "Vietnamese", "yo": "Yoruba", "zh": "Chinese"}  # google/xtreme udpos.<Name>
BUCC_LANGUAGES = ("de", "fr", "ru", "zh")
XCOPA_LANGUAGES = ("et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh")
TATOEBA_LANGUAGES = {"af": "afr", "ar": "ara", "bg": "bul", "bn": "ben", "de": "deu", "el": "ell", "es": "spa",
                     "et": "est", "eu": "eus", "fa": "pes", "fi": "fin", "fr": "fra", "he": "heb", "hi": "hin",
                     "hu": "hun", "id": "ind", "it": "ita", "ja": "jpn", "jv": "jav", "ka": "kat", "kk": "kaz",
                     "ko": "kor", "ml": "mal", "mr": "mar", "nl": "nld", "pt": "por", "ru": "rus", "sw": "swh",
                     "ta": "tam", "te": "tel", "th": "tha", "tl": "tgl", "tr": "tur", "ur": "urd", "vi": "vie",
                     "zh": "cmn"}  # google/xtreme tatoeba.<iso 639-3>
NLI_LABELS = ("entailment", "neutral", "contradiction")  # the hub's label order for XNLI, GLUE MNLI, SNLI, ANLI
PANX_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
UPOS_LABELS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
               "SCONJ", "SYM", "VERB", "X")  # google/xtreme udpos ClassLabel order
NLI_COLUMNS = {"text_a": "premise", "text_b": "hypothesis", "label": "label"}
SQUAD_COLUMNS = {"text_a": "question", "text_b": "context", "answers": "answers"}
PAIRS_COLUMNS = {"text_a": "source_sentence", "text_b": "target_sentence"}
XTREME = "google/xtreme"
TEST_ONLY = ("test",)

GLUE_MNLI = HubSource("nyu-mll/glue", "mnli", {"train": "train", "validation": "validation_matched"})
SNLI = HubSource("stanfordnlp/snli", "plain_text", {"train": "train", "validation": "validation"})


COPA_QUESTIONS = {"cause": "What was the cause?", "effect": "What happened as a result?"}


def _copa(row: dict) -> dict:
    """COPA/XCOPA: two alternatives; the question (cause/effect) becomes a phrase the encoder reads with each."""
    return {**row, "choices": [row["choice1"], row["choice2"]],
            "question_text": COPA_QUESTIONS.get(row["question"], row["question"])}


COPA_COLUMNS = {"text_a": "premise", "text_b": "question_text", "choices": "choices", "label": "label"}


for _task in [
    # -- XTREME target tasks ------------------------------------------------------------------------------------
    Task("xnli", PAIR, "Cross-lingual NLI (Conneau et al. 2018)", NLI_COLUMNS,
         HubSource("facebook/xnli", "{language}", {"train": "train", "validation": "validation", "test": "test"}),
         labels=NLI_LABELS, languages=XNLI_LANGUAGES, splits=("train", "validation", "test"), role="target"),
    Task("pawsx", PAIR, "PAWS-X paraphrase identification (Yang et al. 2019)",
         {"text_a": "sentence1", "text_b": "sentence2", "label": "label"},
         HubSource("google-research-datasets/paws-x", "{language}",
                   {"train": "train", "validation": "validation", "test": "test"}),
         labels=("different", "paraphrase"), languages=PAWSX_LANGUAGES, splits=("train", "validation", "test"),
         # The card's label feature is 0/1; rows without a gold label carry -1 (as GLUE/SNLI do): dropped on load.
         drop_labels=(-1,), role="target"),
    Task("xquad", QA, "XQuAD extractive QA (Artetxe et al. 2020); trained on SQuAD v1.1", SQUAD_COLUMNS,
         HubSource("google/xquad", "xquad.{language}", {"test": "validation"}),
         languages=XQUAD_LANGUAGES, splits=("train", "validation", "test"), metric="(EM+F1)/2", train_task="squad",
         role="target"),
    Task("mlqa", QA, "MLQA extractive QA (Lewis et al. 2020); trained on SQuAD v1.1, MLQA's per-language "
         "normalisation", SQUAD_COLUMNS,
         # facebook/mlqa is still a loading-script dataset (only mlqa.py on main), which `datasets` 5 refuses; the same
         # data is in google/xtreme as parquet configs MLQA.<context>.<question> (test, validation; SQuAD fields).
         HubSource(XTREME, "MLQA.{language}.{language}", {"test": "test"}),
         languages=MLQA_LANGUAGES, splits=("train", "validation", "test"), metric="(EM+F1)/2", train_task="squad",
         qa_normalization="mlqa", role="target"),
    Task("tydiqa", QA, "TyDiQA-GoldP extractive QA (Clark et al. 2020); trained on its English train split",
         SQUAD_COLUMNS, HubSource("google-research-datasets/tydiqa", "secondary_task",
                                  {"train": "train", "validation": "validation", "test": "validation"},
                                  id_prefix=TYDIQA_LANGUAGES),
         languages=tuple(TYDIQA_LANGUAGES), splits=("train", "validation", "test"), metric="(EM+F1)/2",
         role="target", source_note="the hub has no English dev split apart from the evaluation one: early stopping "
         "uses the English validation rows"),
    Task("panx", TAGGING, "PAN-X / WikiANN named entities (Pan et al. 2017)", {"tokens": "tokens", "tags": "ner_tags"},
         HubSource(XTREME, "PAN-X.{language}", {"train": "train", "validation": "validation", "test": "test"}),
         labels=PANX_LABELS, languages=PANX_LANGUAGES, splits=("train", "validation", "test"), metric="f1",
         role="target"),
    Task("udpos", TAGGING, "Universal Dependencies v2.5 part-of-speech tags", {"tokens": "tokens", "tags": "pos_tags"},
         HubSource(XTREME, "udpos.{language}", {"train": "train", "validation": "validation", "test": "test"},
                   language_names=UDPOS_LANGUAGES),
         labels=UPOS_LABELS, languages=tuple(UDPOS_LANGUAGES), splits=("train", "validation", "test"), metric="f1",
         role="target"),
    Task("bucc18", RETRIEVAL, "BUCC 2018 bitext mining (margin scoring, F1 at the best threshold)", PAIRS_COLUMNS,
         HubSource(XTREME, "bucc18.{language}", {"test": "test"}), languages=BUCC_LANGUAGES, splits=TEST_ONLY,
         metric="f1", role="target", source_note="the hub copy keeps only the gold pairs; the full mining corpora "
         "load from local files (<task>/test.jsonl sentences + test.pairs.tsv gold pairs)"),
    Task("tatoeba", RETRIEVAL, "Tatoeba sentence retrieval (nearest neighbour by cosine)", PAIRS_COLUMNS,
         HubSource(XTREME, "tatoeba.{language}", {"test": "validation"}, language_names=TATOEBA_LANGUAGES),
         languages=tuple(TATOEBA_LANGUAGES), splits=TEST_ONLY, metric="accuracy", role="target"),
    # XTREME-R's multiple-choice target (secondary here: not one of the paper's nine).
    Task("xcopa", MULTIPLE_CHOICE, "XCOPA causal commonsense reasoning (Ponti et al. 2020, XTREME-R); trained on COPA",
         COPA_COLUMNS, HubSource("cambridgeltl/xcopa", "{language}", {"test": "test"}), labels=("0", "1"),
         languages=XCOPA_LANGUAGES, splits=("train", "validation", "test"), train_task="copa", prepare=_copa,
         role="target"),
]:
    register(_task)
