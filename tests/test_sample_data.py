"""The synthetic sample data: deterministic, in the hub's row formats, internally consistent (fast: no model)."""

import json
from collections import Counter

import pytest

from xstilts.sampledata import generate as sd

ADDED = ("squad", "xquad", "panx", "tatoeba", "bucc18", "hellaswag", "ccg")
CODE = ("codexglue_defect", "codexglue_clone", "codexglue_codesearch", "mbpp", "humaneval_xl_en", "humaneval_xl_de",
        "humaneval_xl_es", "humaneval_xl_fr", "humaneval_xl_ru", "humaneval", "humaneval_xl", "mbxp")


@pytest.fixture(scope="module")
def data():
    return sd.generate()


def test_generate_is_deterministic_and_seeded(data):
    assert sd.generate() == data
    other = sd.generate(seed=14)
    assert other["squad"]["train"] != data["squad"]["train"] and other["xnli"]["train"] != data["xnli"]["train"]


def test_tasks_and_splits(data):
    assert list(data) == ["xnli", "mnli", "sst2", *ADDED, *CODE]
    expected = {"xnli": {"train", "validation", "test"}, "mnli": {"train", "validation"},
                "sst2": {"train", "validation"}, "squad": {"train", "validation"}, "xquad": {"test"},
                "panx": {"train", "validation", "test"}, "tatoeba": {"test"}, "bucc18": {"test", "test.pairs"},
                "hellaswag": {"train", "validation"}, "ccg": {"train", "validation"},
                **{task: {"test"} if task in ("humaneval", "humaneval_xl", "mbxp") else {"train", "validation"}
                   for task in CODE}}
    assert {task: set(splits) for task, splits in data.items()} == expected
    assert len(data["squad"]["train"]) == 1000 and len(data["squad"]["validation"]) == 150
    assert len(data["hellaswag"]["train"]) == 800 and len(data["ccg"]["validation"]) == 150


def test_existing_tasks_keep_their_rows(data):
    """The added tasks use their own generators: XNLI/MNLI/SST-2 are what they were (first rows pinned)."""
    assert data["xnli"]["train"][0] == sd.generate(sizes={"squad": {"train": 5}})["xnli"]["train"][0]
    assert [len(data["xnli"][s]) for s in ("train", "validation", "test")] == [1200, 150, 750]
    assert set(data["mnli"]["train"][0]) == {"premise", "hypothesis", "label", "idx"}


def test_every_test_split_has_all_its_languages(data):
    for task, langs in sd.TEST_LANGUAGES.items():
        rows = data[task]["test"]
        assert all("language" in row for row in rows), task
        assert set(Counter(row["language"] for row in rows)) == set(langs), task
    assert sd.TEST_LANGUAGES["tatoeba"] == ("de", "es", "fr", "ru")
    assert sd.TEST_LANGUAGES["bucc18"] == ("de", "fr", "ru")
    for task in ("xquad", "panx", "tatoeba"):
        counts = Counter(row["language"] for row in data[task]["test"])
        assert set(counts.values()) == {100}, (task, counts)


def _check_qa_row(row, fields):
    assert set(row) == fields
    assert isinstance(row["id"], str) and isinstance(row["context"], str) and isinstance(row["question"], str)
    answers = row["answers"]
    assert set(answers) == {"text", "answer_start"} and len(answers["text"]) == len(answers["answer_start"]) >= 1
    for text, start in zip(answers["text"], answers["answer_start"]):
        assert isinstance(start, int) and isinstance(text, str) and text
        assert row["context"][start:start + len(text)] == text


def test_squad_rows_and_spans(data):
    fields = {"id", "title", "context", "question", "answers"}
    ids = []
    for split in ("train", "validation"):
        for row in data["squad"][split]:
            _check_qa_row(row, fields)
            assert "language" not in row
            ids.append(row["id"])
    assert len(ids) == len(set(ids))
    assert all(len(r["answers"]["text"]) == 3 for r in data["squad"]["validation"])  # several annotators, as on the hub
    assert all(len(r["answers"]["text"]) == 1 for r in data["squad"]["train"])
    # Some paragraphs are long enough to need two 64-token windows (checked in words: > 40 words and punctuation).
    assert any(len(r["context"].split()) > 45 for r in data["squad"]["train"])


def test_xquad_rows_spans_and_parallel_ids(data):
    fields = {"id", "context", "question", "answers", "language"}  # google/xquad has no title
    by_lang = {}
    for row in data["xquad"]["test"]:
        _check_qa_row(row, fields)
        assert len(row["answers"]["text"]) == 1
        by_lang.setdefault(row["language"], []).append(row["id"])
    for lang, ids in by_lang.items():
        assert len(ids) == len(set(ids)), lang  # unique within a language ...
        assert ids == by_lang["en"]  # ... and parallel across languages, as on the hub
    assert any(len(r["context"].split()) > 50 for r in data["xquad"]["test"] if r["language"] == "en")
    # Cross-lingual anchors: an English answer that is a name or digit is the same string in every language.
    en = [r for r in data["xquad"]["test"] if r["language"] == "en"]
    ru = [r for r in data["xquad"]["test"] if r["language"] == "ru"]
    shared = [a["answers"]["text"] == b["answers"]["text"] for a, b in zip(en, ru)
              if a["answers"]["text"][0] in sd.NAMES or a["answers"]["text"][0].isdigit()]
    assert shared and all(shared)


def test_panx_tags(data):
    assert sd.PANX_TAGS == ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
    seen = Counter()
    for split, rows in data["panx"].items():
        for row in rows:
            assert set(row) == ({"tokens", "ner_tags", "langs", "language"} if split == "test"
                                else {"tokens", "ner_tags", "langs"})
            assert len(row["tokens"]) == len(row["ner_tags"]) == len(row["langs"]) > 0
            assert all(isinstance(t, int) and 0 <= t < len(sd.PANX_TAGS) for t in row["ner_tags"])
            assert set(row["langs"]) == {row.get("language", "en")}
            for prev, tag in zip([0] + row["ner_tags"], row["ner_tags"]):
                name = sd.PANX_TAGS[tag]
                if name.startswith("I-"):  # an I- tag continues an entity of the same type
                    assert sd.PANX_TAGS[prev][2:] == name[2:]
            seen.update(sd.PANX_TAGS[t] for t in row["ner_tags"])
    assert set(seen) == set(sd.PANX_TAGS)


def test_ccg_tags(data):
    tags = Counter()
    for rows in data["ccg"].values():
        for row in rows:
            assert set(row) == {"tokens", "tags"}
            assert len(row["tokens"]) == len(row["tags"]) > 0
            assert all(isinstance(t, str) and t for t in row["tokens"] + row["tags"])
            tags.update(row["tags"])
    assert {"N", "NP", "NP/N", "(S\\NP)/NP", "S\\NP", "."} <= set(tags)
    # The tag of an ambiguous word depends on its role: "cooks" is a noun and both kinds of verb.
    cooks = {tag for rows in data["ccg"].values() for row in rows
             for tok, tag in zip(row["tokens"], row["tags"]) if tok == "cooks"}
    assert {"N", "(S\\NP)/NP", "S\\NP"} <= cooks


def test_tatoeba_pairs(data):
    rows = data["tatoeba"]["test"]
    assert {r["language"] for r in rows} == {"de", "es", "fr", "ru"}
    for row in rows:
        assert set(row) == {"source_sentence", "target_sentence", "source_lang", "target_lang", "language"}
        assert row["source_lang"] == sd.LANGUAGE_CODES3[row["language"]] and row["target_lang"] == "eng"
        assert row["source_sentence"] != row["target_sentence"]
    for lang in ("de", "es", "fr", "ru"):  # targets unique per language: retrieval has one right answer
        targets = [r["target_sentence"] for r in rows if r["language"] == lang]
        assert len(targets) == len(set(targets)) == 100


def test_bucc18_gold_pairs(data):
    rows, pairs = data["bucc18"]["test"], data["bucc18"]["test.pairs"]
    by_id = {row["id"]: row for row in rows}
    assert len(by_id) == len(rows)  # ids unique across the whole file
    for row in rows:
        assert set(row) == {"id", "language", "side", "sentence"} and row["side"] in ("source", "target")
        if row["side"] == "source":
            assert row["id"].startswith(f"{row['language']}-")
        else:
            assert row["id"].startswith("en-") and row["id"].endswith(f"-{row['language']}")
    assert all(isinstance(p, tuple) and len(p) == 2 for p in pairs) and len(set(pairs)) == len(pairs)
    for source, target in pairs:
        assert by_id[source]["side"] == "source" and by_id[target]["side"] == "target"
        assert by_id[source]["language"] == by_id[target]["language"]
    for lang in ("de", "fr", "ru"):
        sides = Counter(r["side"] for r in rows if r["language"] == lang)
        assert sides == {"source": 60, "target": 80}
        gold = [p for p in pairs if by_id[p[0]]["language"] == lang]
        assert len(gold) == 40
        assert len({s for s, _ in gold}) == len({t for _, t in gold}) == 40  # one-to-one
        assert sum(s.split("-")[1] == t.split("-")[1] for s, t in gold) < 10  # ids do not give pairs away
        # Sentences are unique per language and side, so a distractor is never a copy of a gold translation.
        for side in ("source", "target"):
            sentences = [r["sentence"] for r in rows if r["language"] == lang and r["side"] == side]
            assert len(sentences) == len(set(sentences))


def test_hellaswag_rows(data):
    inds = []
    for split, rows in data["hellaswag"].items():
        for row in rows:
            assert set(row) == {"ind", "activity_label", "ctx_a", "ctx_b", "ctx", "endings", "source_id", "split",
                                "split_type", "label"}
            assert isinstance(row["ind"], int) and isinstance(row["label"], str) and row["label"] in "0123"
            assert len(row["label"]) == 1 and len(row["endings"]) == 4 and len(set(row["endings"])) == 4
            assert row["ctx"] == (f"{row['ctx_a']} {row['ctx_b']}" if row["ctx_b"] else row["ctx_a"])
            assert row["split"] == ("train" if split == "train" else "val")
            assert row["source_id"].startswith("activitynet~")
            inds.append(row["ind"])
    assert len(inds) == len(set(inds))
    assert {r["split_type"] for r in data["hellaswag"]["train"]} == {"indomain"}
    assert {r["split_type"] for r in data["hellaswag"]["validation"]} == {"indomain", "zeroshot"}
    assert set(Counter(r["label"] for r in data["hellaswag"]["train"])) == {"0", "1", "2", "3"}
    # The right ending is determined by the context: it names the context's activity's tool and action.
    for row in data["hellaswag"]["train"]:
        activity = next(a for a in sd.ACTIVITIES if a[0] == row["activity_label"])
        right = row["endings"][int(row["label"])]
        assert activity[2] in right
        assert any(action.format(tool=activity[2]) in right for action in activity[3])


def test_shipped_tokenizer_corpora_are_the_generators(tmp_path):
    """xstilts/models/corpus/ is what write_corpora writes today (a changed generator must rewrite it: see
    write_corpora), and reads back as the generator's texts, newlines and all."""
    from xstilts.models import tiny

    written = sd.write_corpora(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in tiny.CORPUS_DIR.glob("*.jsonl"))
    for path in written:
        assert path.read_bytes() == (tiny.CORPUS_DIR / path.name).read_bytes(), f"regenerate {path.name}"
    assert tiny.read_corpus("tiny-encoder.jsonl") == sd.corpus()
    assert tiny.causal_corpus() == list(tiny.CODE_CORPUS) + sd.causal_code_corpus() + sd.corpus()
    assert any("\n" in text for text in tiny.read_corpus("tiny-causal.jsonl"))


def test_corpus_covers_every_task_and_is_deterministic(data):
    texts = sd.corpus()
    assert texts == sd.corpus() and all(isinstance(t, str) and t for t in texts)
    present = set(texts)
    samples = {
        "xnli": data["xnli"]["test"][-1]["premise"], "mnli": data["mnli"]["train"][0]["hypothesis"],
        "sst2": data["sst2"]["validation"][0]["sentence"],
        "squad": data["squad"]["train"][0]["context"], "squad-q": data["squad"]["validation"][-1]["question"],
        "xquad": data["xquad"]["test"][-1]["context"], "xquad-q": data["xquad"]["test"][-1]["question"],
        "panx": " ".join(data["panx"]["test"][-1]["tokens"]), "ccg": " ".join(data["ccg"]["train"][0]["tokens"]),
        "tatoeba": data["tatoeba"]["test"][-1]["source_sentence"],
        "tatoeba-en": data["tatoeba"]["test"][-1]["target_sentence"],
        "bucc18": data["bucc18"]["test"][-1]["sentence"], "hellaswag": data["hellaswag"]["validation"][-1]["ctx"],
        "hellaswag-ending": data["hellaswag"]["train"][0]["endings"][3],
    }
    for task, text in samples.items():
        assert text in present, task
    # The first three tasks' texts come first, in their old order.
    n_old = sum(len(rows) * (1 if task == "sst2" else 2) for task in ("xnli", "mnli", "sst2")
                for rows in data[task].values())
    assert texts[0] == data["xnli"]["train"][0]["premise"]
    assert texts[n_old - 1] == data["sst2"]["validation"][-1]["sentence"]


def test_sizes_override_and_scale():
    small = sd.generate(sizes={"train": 10, "validation": 5, "test": 4, "scale": 0.1, "bucc18": {"gold": 3}})
    assert len(small["xnli"]["train"]) == 10 and len(small["xnli"]["test"]) == 20
    assert len(small["squad"]["train"]) == 100 and len(small["xquad"]["test"]) == 40  # XQuAD has no French
    assert len(small["bucc18"]["test.pairs"]) == 9
    assert len(sd.generate(sizes={"panx": {"test": 7}})["panx"]["test"]) == 35
    with pytest.raises(ValueError):
        sd.generate(sizes={"squad": {"test": 3}})


def test_write_sample_data_is_byte_identical(tmp_path, data):
    a = sd.write_sample_data(tmp_path / "a")
    b = sd.write_sample_data(tmp_path / "b")
    assert (a / ".xstilts-output").is_file()  # the folder is xstilts' own: a re-run may replace it
    files_a = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file() and p.name != ".xstilts-output")
    files_b = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file() and p.name != ".xstilts-output")
    assert files_a == files_b
    assert "bucc18/test.pairs.tsv" in files_a and "bucc18/test.jsonl" in files_a
    # xnli/mnli/sst2, squad, xquad, panx, tatoeba, bucc18 (with the pairs file), hellaswag, ccg
    assert len(files_a) == 7 + 2 + 1 + 3 + 1 + 2 + 2 + 2 + 9 * 2 + 3  # + code tasks (train/validation, or test)
    for name in files_a:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    lines = (a / "bucc18" / "test.pairs.tsv").read_text(encoding="utf-8").splitlines()
    assert [tuple(line.split("\t")) for line in lines] == data["bucc18"]["test.pairs"]
    first = json.loads((a / "squad" / "train.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first == data["squad"]["train"][0]
    assert not list(tmp_path.glob(".*tmp-*"))  # atomic: no temp dir left behind


def test_code_tasks_are_in_hub_row_formats_and_parallel(data):
    assert set(data["codexglue_defect"]["train"][0]) == {"id", "func", "target", "project", "commit_id"}
    assert isinstance(data["codexglue_clone"]["validation"][0]["label"], bool)
    assert data["codexglue_codesearch"]["train"][0]["language"] == "python"  # the hub's field: programming language
    train_docs = {r["docstring"] for r in data["codexglue_codesearch"]["train"]}
    assert not train_docs & {r["docstring"] for r in data["codexglue_codesearch"]["validation"]}
    assert set(data["mbpp"]["train"][0]) == {"task_id", "text", "code", "test_list", "test_setup_code",
                                              "challenge_test_list"}
    mbxp = data["mbxp"]["test"]
    assert {r["language"] for r in mbxp} == {"python", "javascript", "typescript", "java", "cpp", "go"}
    assert {r["task_id"].split("/")[0] for r in mbxp} == {"MBPP", "MBJSP", "MBTSP", "MBJP", "MBCPP", "MBGP"}
    # HumanEval-XL: the same problems (ids, tests) in every natural language, only the prompt's language differs
    by_language: dict[str, list] = {}
    for row in data["humaneval_xl"]["test"]:
        by_language.setdefault(row["natural_language"], []).append((row["task_id"], row["test"]))
    assert set(by_language) == {"English", "German", "Spanish", "French", "Russian"}
    assert len({tuple(v) for v in by_language.values()}) == 1
    assert data["humaneval_xl_de"]["train"][0]["prompt"] != data["humaneval_xl_en"]["train"][0]["prompt"]
    assert [r["task_id"] for r in data["humaneval_xl_de"]["train"]] == [r["task_id"] for r in data["humaneval_xl_en"]["train"]]
    # intermediate problems are disjoint from the evaluation problems
    assert not {r["entry_point"] for r in data["humaneval_xl_en"]["train"]} & {r["entry_point"] for r in data["humaneval"]["test"]}


def test_code_texts_stay_out_of_the_encoder_corpus():
    """The tiny encoder's tokenizer (and so every existing result) does not change with the code tasks."""
    code = set(sd.code_corpus())
    assert code and not code & set(sd.corpus())
