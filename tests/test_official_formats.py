"""Official release files (SQuAD JSON, XNLI/PAWS-X TSV, CoNLL-U, PAN-X token files, Tatoeba, BUCC, MBXP/HumanEval/
MBPP JSONL) read straight from a data root: small literal files in each format's published layout, never the hub's
row format."""

from __future__ import annotations

import gzip
import hashlib
import json

import pandas as pd
import pytest

from xstilts.data.load import load_split
from xstilts.data.official import official_sources
from xstilts.data.validate import validate_tasks
from xstilts.errors import DataError
from xstilts.tasks.registry import get_task


def put(root, rel, text):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def squad_json(paragraphs, title="Köln"):
    return json.dumps({"version": "1.1", "data": [{"title": title, "paragraphs": paragraphs}]}, ensure_ascii=False)


CONTEXT_DE = "Der Kölner Dom steht in Köln. Er ist 157 Meter hoch."
XQUAD_DE = squad_json([{"context": CONTEXT_DE, "qas": [
    {"id": "q1", "question": "Wo steht der Dom?", "answers": [{"text": "in Köln", "answer_start": 21}]},
    {"id": "q2", "question": "Wie hoch ist er?", "answers": [{"text": "157 Meter", "answer_start": 37}]}]}])
CONTEXT_EN = "The Eiffel Tower is in Paris. It is 330 metres tall."
SQUAD_EN = squad_json([{"context": CONTEXT_EN, "qas": [
    {"id": f"s{i}", "question": q, "answers": [{"text": a, "answer_start": CONTEXT_EN.index(a)}] * (1 + i % 2)}
    for i, (q, a) in enumerate([("Where is the tower?", "Paris"), ("How tall is it?", "330 metres")])]}], "Eiffel")


def run_validate(root, out, task, languages=None, task_data=None):
    return validate_tasks([task], str(root), out / "ds", out / "r.html", out / "r.md", languages, task_data=task_data)


def test_xquad_and_squad_json_validate_with_lineage(tmp_path):
    root = tmp_path / "data"
    put(root, "squad/train-v1.1.json", SQUAD_EN)
    put(root, "squad/dev-v1.1.json", SQUAD_EN)
    xquad = put(root, "xquad/xquad.de.json", XQUAD_DE)
    manifest = run_validate(root, tmp_path, "xquad", ["de"])
    assert manifest["tasks"]["xquad"]["splits"]["test"]["rows_per_language"] == {"de": 2}
    df = pd.read_parquet(tmp_path / "ds" / "xquad" / "test.parquet")
    assert df["id"].tolist() == ["q1", "q2"] and df["text_b"][0] == CONTEXT_DE
    assert df["answer_texts"][0].tolist() == ["in Köln"] and df["answer_starts"][0].tolist() == [21]
    dev = pd.read_parquet(tmp_path / "ds" / "squad" / "validation.parquet")
    assert dev["answer_texts"][1].tolist() == ["330 metres", "330 metres"]  # SQuAD dev keeps every answer
    lineage = json.loads((tmp_path / "ds" / "lineage.json").read_text())
    md5 = hashlib.md5(xquad.read_bytes()).hexdigest()
    assert lineage["data"]["official_files"]["xquad/test"] == {"xquad/xquad.de.json": md5}
    assert lineage["data"]["files"][str(xquad.resolve())] == md5
    assert official_sources(root, get_task("squad"), "train") == {
        "squad/train-v1.1.json": hashlib.md5(SQUAD_EN.encode()).hexdigest()}


def test_single_official_file_and_the_train_task_message(tmp_path):
    xquad = put(tmp_path, "xquad.de.json", XQUAD_DE)
    df = load_split(get_task("xquad"), "test", str(xquad), ("de",))
    assert df["language"].tolist() == ["de", "de"] and df.attrs["source"] == str(xquad)
    with pytest.raises(DataError, match=r"xquad trains on squad's English data \(train_task\): `data` is the single "
                                        r"file .*xquad\.de\.json.*train-v1\.1\.json"):
        run_validate(xquad, tmp_path, "xquad", ["de"])
    with pytest.raises(DataError, match=r"xquad trains on squad's English data \(train_task\): put squad's files "
                                        r"under .*/squad/ .*train-v1\.1\.json"):
        run_validate(tmp_path, tmp_path, "xquad", ["de"])


def test_stripped_qa_gold_is_refused(tmp_path):
    stripped = squad_json([{"context": CONTEXT_DE, "qas": [
        {"id": "q1", "question": "Wo?", "answers": [{"text": "", "answer_start": 0}]}]}])
    put(tmp_path, "mlqa/test-context-de-question-de.json", stripped)
    with pytest.raises(DataError, match=r"test-context-de-question-de\.json: the test gold was stripped"):
        load_split(get_task("mlqa"), "test", str(tmp_path), ("de",))


def test_tydiqa_files_by_language(tmp_path):
    ctx = "Helsinki on Suomen pääkaupunki."
    put(tmp_path, "tydiqa-goldp-v1.1-dev/tydiqa-goldp-dev-finnish.json", squad_json([{"context": ctx, "qas": [
        {"id": "finnish-1-0", "question": "Mikä on Suomen pääkaupunki?",
         "answers": [{"text": "Helsinki", "answer_start": 0}]}]}]))
    df = load_split(get_task("tydiqa"), "test", str(tmp_path), ("fi",))
    assert df["id"].tolist() == ["finnish-1-0"] and df["answer_texts"][0] == ["Helsinki"]


XNLI_HEADER = ("language\tgold_label\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\t"
               "sentence1\tsentence2\tpromptID\tpairID\tgenre\tlabel1\n")


def xnli_line(lang, label, s1, s2, n):
    return f"{lang}\t{label}\t\t\t\t\t{s1}\t{s2}\t{n}\t{n}\tfiction\t{label}\n"


def test_xnli_tsv_and_xtreme_stripped_copy(tmp_path):
    put(tmp_path, "XNLI-1.0/xnli.test.tsv", XNLI_HEADER + xnli_line("en", "neutral", "A man eats.", "He is hungry.", 1)
        + xnli_line("de", "entailment", "Ein Mann isst.", "Jemand isst.", 1)
        + xnli_line("de", "contradiction", "Die Straße ist leer.", "Die Straße ist voll.", 2))
    df = load_split(get_task("xnli"), "test", str(tmp_path), ("de",))
    assert df[["text_a", "label"]].values.tolist() == [["Ein Mann isst.", "entailment"],
                                                       ["Die Straße ist leer.", "contradiction"]]
    assert df["id"].tolist() == ["xnli-de-test-de-1", "xnli-de-test-de-2"]  # as the hub path numbers them
    put(tmp_path, "XNLI-MT-1.0/multinli/multinli.train.en.tsv",
        "premise\thypo\tlabel\nA dog runs.\tAn animal moves.\tentailment\nIt rains.\tIt is dry.\tcontradictory\n")
    train = load_split(get_task("xnli"), "train", str(tmp_path), ("en",))
    assert train["label"].tolist() == ["entailment", "contradiction"]
    xtreme = tmp_path / "download"
    put(xtreme, "xnli/test-de.tsv", "Ein Mann isst.\tJemand isst.\n")
    with pytest.raises(DataError, match=r"test-de\.tsv: the test gold was stripped"):
        load_split(get_task("xnli"), "test", str(xtreme), ("de",))


def test_pawsx_tsv(tmp_path):
    put(tmp_path, "x-final/ja/test_2k.tsv", "id\tsentence1\tsentence2\tlabel\n1\t東京は大きい。\t東京は大都市だ。\t1\n"
        "2\t猫が寝る。\t犬が走る。\t0\n3\tbroken\trow\t\n")
    df = load_split(get_task("pawsx"), "test", str(tmp_path), ("ja",))
    assert df[["id", "label"]].values.tolist() == [["1", "paraphrase"], ["2", "different"]]


CONLLU_EN = """# sent_id = 1
# text = Don't stop.
1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_
1\tDo\tdo\tAUX\t_\t_\t3\taux\t_\t_
2\tn't\tnot\tPART\t_\t_\t3\tadvmod\t_\t_
3\tstop\tstop\tVERB\t_\t_\t0\troot\t_\tSpaceAfter=No
3.1\tgo\tgo\tVERB\t_\t_\t_\t_\t0:root\t_
4\t.\t.\tPUNCT\t_\t_\t3\tpunct\t_\t_

# sent_id = 2
1\tZürich\tZürich\tPROPN\t_\t_\t0\troot\t_\t_

"""


def test_conllu_and_panx_validate(tmp_path):
    root = tmp_path / "data"
    put(root, "ud-treebanks-v2.5/UD_English-EWT/en_ewt-ud-test.conllu", CONLLU_EN)
    put(root, "ud-treebanks-v2.5/UD_English-PUD/en_pud-ud-test.conllu", CONLLU_EN.split("\n\n")[1] + "\n\n")
    df = load_split(get_task("udpos"), "test", str(root), ("en",))
    assert df["tokens"].tolist() == [["Do", "n't", "stop", "."], ["Zürich"], ["Zürich"]]
    assert df["tags"][0] == ["AUX", "PART", "VERB", "PUNCT"]
    panx = "en:Angela\tB-PER\nen:Merkel\tI-PER\nen:visited\tO\nen:São\tB-LOC\nen:Paulo\tI-LOC\n\nen:Hi\tO\n\n"
    for split in ("train", "dev", "test"):
        put(root, f"panx_dataset/en-{split}", panx)
    run_validate(root, tmp_path, "panx", ["en"])
    test = pd.read_parquet(tmp_path / "ds" / "panx" / "test.parquet")
    assert test["tokens"][0].tolist() == ["Angela", "Merkel", "visited", "São", "Paulo"]
    assert test["tags"][0].tolist() == ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]
    put(tmp_path, "download/panx/test-de.tsv", "Angela\nMerkel\n\n")
    with pytest.raises(DataError, match="the test gold was stripped"):
        load_split(get_task("panx"), "test", str(tmp_path / "download"), ("de",))


def test_tatoeba_and_bucc(tmp_path):
    put(tmp_path, "tatoeba/v1/tatoeba.deu-eng.deu", "Ich bin müde.\nGuten Morgen!\n")
    put(tmp_path, "tatoeba/v1/tatoeba.deu-eng.eng", "I am tired.\nGood morning!\n")
    df = load_split(get_task("tatoeba"), "test", str(tmp_path), ("de",))
    assert df[["text_a", "side"]].values.tolist() == [["Ich bin müde.", "source"], ["I am tired.", "target"],
                                                      ["Guten Morgen!", "source"], ["Good morning!", "target"]]
    bucc = tmp_path / "bucc2018" / "de-en"
    put(bucc, "de-en.training.de", "de-000001\tDer Hund schläft.\nde-000002\tEs regnet.\n")
    put(bucc, "de-en.training.en", "en-000001\tIt is raining.\nen-000002\tThe dog sleeps.\nen-000003\tHello.\n")
    put(bucc, "de-en.training.gold", "de-000001\ten-000002\nde-000002\ten-000001\n")
    df = load_split(get_task("bucc18"), "test", str(tmp_path), ("de",))
    assert dict(zip(df["id"], df["label"]))["de-000001"] == "en-000002" and len(df) == 5
    assert set(official_sources(tmp_path, get_task("bucc18"), "test", ("de",))) == {
        f"bucc2018/de-en/de-en.training.{ext}" for ext in ("de", "en", "gold")}
    for ext in ("de", "en", "gold"):
        (bucc / f"de-en.training.{ext}").rename(bucc / f"de-en.test.{ext}")
    (bucc / "de-en.test.gold").unlink()  # what XTREME's download script leaves
    with pytest.raises(DataError, match=r"de-en\.test\.de: the test gold was stripped \(no de-en\.test\.gold"):
        load_split(get_task("bucc18"), "test", str(tmp_path), ("de",))


MBJSP = {"task_id": "MBJSP/1", "language": "javascript", "prompt": "/**\n * Gib die Summe zurück.\n */\n"
         "const sumList = (nums) => {\n", "test": "const assert = require('assert');\n"
         "assert.deepEqual(sumList([1, 2]), 3);\n", "entry_point": "sumList",
         "canonical_solution": "  return nums.reduce((a, b) => a + b, 0);\n};\n", "description": "Summe"}


def test_code_jsonl_gz_and_ambiguous_versions(tmp_path):
    mbxp = tmp_path / "mbxp"
    mbxp.mkdir()
    (mbxp / "mbjsp_release_v1.2.jsonl.gz").write_bytes(gzip.compress((json.dumps(MBJSP) + "\n").encode()))
    df = load_split(get_task("mbxp"), "test", str(tmp_path), ("javascript",))
    assert df[["id", "program_language", "entry_point"]].values.tolist() == [["MBJSP/1", "javascript", "sumList"]]
    put(mbxp, "mbjsp_release_v1.jsonl", json.dumps(MBJSP) + "\n")
    with pytest.raises(DataError, match=r"ambiguous mbxp test files for language 'javascript' in .*mbxp: "
                                        r"mbxp/mbjsp_release_v1\.2\.jsonl\.gz, mbxp/mbjsp_release_v1\.jsonl"):
        load_split(get_task("mbxp"), "test", str(tmp_path), ("javascript",))
    (tmp_path / "HumanEval.jsonl.gz").write_bytes(gzip.compress((json.dumps({
        "task_id": "HumanEval/0", "prompt": "def add(a, b):\n    \"\"\"Add.\"\"\"\n", "entry_point": "add",
        "canonical_solution": "    return a + b\n", "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n"})
        + "\n").encode()))
    he = load_split(get_task("humaneval"), "test", str(tmp_path), ("en",))
    assert he["test"][0].rstrip().endswith("check(add)")
    put(tmp_path, "mbpp/mbpp.jsonl", "".join(json.dumps({
        "task_id": i, "text": "Write a function that doubles x.", "code": "def double(x):\r\n    return 2 * x\r\n",
        "test_list": ["assert double(2) == 4"], "test_setup_code": "", "challenge_test_list": []}) + "\n"
        for i in (5, 520, 700)))
    assert load_split(get_task("mbpp"), "train", str(tmp_path), ("en",))["id"].tolist() == ["700"]
    assert load_split(get_task("mbpp"), "validation", str(tmp_path), ("en",))["id"].tolist() == ["520"]


def test_unknown_layout_names_the_expected_files(tmp_path):
    put(tmp_path, "notes.txt", "nothing here\n")
    with pytest.raises(DataError, match=r"missing file: .*xquad/test\.jsonl \(or \.parquet\), or xquad's official "
                                        r"test file for language 'de' \(xquad\.de\.json\) in "):
        load_split(get_task("xquad"), "test", str(tmp_path), ("de",))
    put(tmp_path, "squad/train-v1.1.json", '{"version": "1.1", "rows": []}')
    with pytest.raises(DataError, match=r"train-v1\.1\.json: not a SQuAD-format file"):
        load_split(get_task("squad"), "train", str(tmp_path), ("en",))
    put(tmp_path, "a/xquad.de.json", XQUAD_DE)
    put(tmp_path, "b/xquad.de.json", XQUAD_DE)
    with pytest.raises(DataError, match=r"ambiguous xquad test files .*a/xquad\.de\.json, b/xquad\.de\.json"):
        load_split(get_task("xquad"), "test", str(tmp_path), ("de",))
