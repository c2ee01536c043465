"""O-LoRA's continual-learning benchmarks (github.com/cmnfriend/O-LoRA) as Hub task definitions for users with a
network (tasks/hub/cl_benchmark) and order presets (conf/tasks/olora_*), checked here without one: every
definition is read from a stand-in for ``datasets.load_dataset`` shaped like its Hub dataset, through its kind,
into O-LoRA's input and label word. The expectations below are copied by hand from O-LoRA's repository (commit
07117e1): the orders from scripts/order_{1,2,3}.sh and scripts/long.sh (orders 4 and 5 from the paper's Table 7),
the label words from CL_Benchmark/*/*/labels.json, the instructions from configs/instruction_config.json and the
row layouts from CL_Benchmark/*/*/train.json; not read from the files under test."""

import datasets
import pytest
from datasets import Dataset
from omegaconf import OmegaConf

from seqadapt.build import check_task_sizes, resolve_task_dir
from seqadapt.config_check import check_config
from seqadapt.data import SplitSizes, build_splits, load_task_spec, read_source
from seqadapt.data.tasks import read_definition
from seqadapt.kinds import kind_of
from tests.cli.test_train import compose_train

CL = resolve_task_dir("tasks/hub/cl_benchmark")

ORDERS = {  # O-LoRA's task orders, by preset
    "olora_standard_1": ["dbpedia", "amazon", "yahoo", "agnews"],  # scripts/order_1.sh
    "olora_standard_2": ["dbpedia", "amazon", "agnews", "yahoo"],  # scripts/order_2.sh
    "olora_standard_3": ["yahoo", "amazon", "agnews", "dbpedia"],  # scripts/order_3.sh
    "olora_long_4": ["MNLI", "CB", "WiC", "COPA", "QQP", "BoolQA", "RTE", "IMDB", "yelp", "amazon", "SST-2",
                     "dbpedia", "agnews", "MultiRC", "yahoo"],  # paper, Table 7
    "olora_long_5": ["MultiRC", "BoolQA", "WiC", "MNLI", "CB", "COPA", "QQP", "RTE", "IMDB", "SST-2", "dbpedia",
                     "agnews", "yelp", "amazon", "yahoo"],  # paper, Table 7
    "olora_long_6": ["yelp", "amazon", "MNLI", "CB", "COPA", "QQP", "RTE", "IMDB", "SST-2", "dbpedia", "agnews",
                     "yahoo", "MultiRC", "BoolQA", "WiC"],  # scripts/long.sh
}
NAMES = {"dbpedia": "cl_dbpedia", "amazon": "cl_amazon", "yahoo": "cl_yahoo", "agnews": "cl_agnews", "yelp": "cl_yelp",
         "MNLI": "cl_mnli", "CB": "cl_cb", "WiC": "cl_wic", "COPA": "cl_copa", "QQP": "cl_qqp", "BoolQA": "cl_boolq",
         "RTE": "cl_rte", "IMDB": "cl_imdb", "SST-2": "cl_sst2", "MultiRC": "cl_multirc"}
STARS = ["very negative", "negative", "neutral", "positive", "very positive"]
LABELS = {  # CL_Benchmark/<group>/<dataset>/labels.json, in file order (the order of the "Option:" list)
    "dbpedia": ["Company", "Educational Institution", "Artist", "Athlete", "Office Holder", "Mean of Transportation",
                "Building", "Natural Place", "Village", "Animal", "Plant", "Album", "Film", "Written Work"],
    "amazon": STARS,
    "yahoo": ["Society & Culture", "Science & Mathematics", "Health", "Education & Reference", "Computers & Internet",
              "Sports", "Business & Finance", "Entertainment & Music", "Family & Relationships",
              "Politics & Government"],
    "agnews": ["World", "Sports", "Business", "Science or Technology"],
    "yelp": STARS,
    "MNLI": ["neutral", "entailment", "contradiction"],
    "CB": ["entailment", "contradiction", "neutral"],
    "RTE": ["contradiction", "entailment"],
    "QQP": ["False", "True"],
    "BoolQA": ["True", "False"],
    "MultiRC": ["False", "True"],
    "WiC": ["True", "False"],
    "COPA": ["A", "B"],
    "IMDB": ["Good", "Bad"],
    "SST-2": ["Good", "Bad"],
}
HUB_WORDS = {  # the word for each Hub label id (ClassLabel order of the Hub dataset), where not labels.json's order
    "MNLI": ["entailment", "neutral", "contradiction"],  # nyu-mll/glue mnli
    "RTE": ["entailment", "contradiction"],  # glue rte: not_entailment is O-LoRA's "contradiction"
    "BoolQA": ["False", "True"], "WiC": ["False", "True"], "IMDB": ["Bad", "Good"], "SST-2": ["Bad", "Good"],
}
GROUP = {"dbpedia": "TC", "yahoo": "TC", "agnews": "TC", "amazon": "SC", "yelp": "SC", "IMDB": "SC", "SST-2": "SC",
         "MNLI": "NLI", "CB": "NLI", "RTE": "NLI", "QQP": "QQP", "BoolQA": "BoolQA", "MultiRC": "MultiRC",
         "WiC": "WiC", "COPA": "COPA"}
INSTRUCTIONS = {  # configs/instruction_config.json (COPA has none: src/uie_dataset_lora.py, load_COPA_dataset)
    "NLI": 'What is the logical relationship between the "sentence 1" and the "sentence 2"? '
           "Choose one from the option.\n",
    "QQP": 'Whether the "first sentence" and the "second sentence" have the same meaning? '
           "Choose one from the option.\n",
    "SC": "What is the sentiment of the following paragraph? Choose one from the option.\n",
    "TC": "What is the topic of the following paragraph? Choose one from the option.\n",
    "BoolQA": "According to the following passage, is the question true or false? Choose one from the option.\n",
    "MultiRC": "According to the following passage and question, is the candidate answer true or false? "
               "Choose one from the option.\n",
    "WiC": "Given a word and two sentences, whether the word is used with the same sense in both sentence? "
           "Choose one from the option.\n",
}
ROWS = {  # one Hub-shaped row per dataset (column names and value types as on the Hub), and O-LoRA's "sentence"
    "dbpedia": ({"label": 4, "title": "William V. Brady", "content": " William Vermilye Brady was Mayor."},
                lambda r: f"Title: {r['title']}\nText: {r['content']}\n"),
    "amazon": ({"text": "Not what you see. This carrier is not the one in the picture.", "label": 1},
               lambda r: f"Text: {r['text']}\n"),  # O-LoRA: "Title: ...\nText: ..."; the Hub copy has one text
    "yahoo": ({"id": 0, "topic": 8, "question_title": "Why?", "question_content": "Is it so?", "best_answer": "Yes."},
              lambda r: f"Title: {r['question_title']}\nText: {r['question_content']} {r['best_answer']}\n"),
    "agnews": ({"text": "Intel Seen Readying New Wi-Fi Chips (Reuters) Reuters - Intel Corp. ...", "label": 3},
               lambda r: f"Text: {r['text']}\n"),  # O-LoRA: "Title: ...\nText: ..."; the Hub joins the two
    "yelp": ({"label": 2, "text": "Pretty good but they give you this food on a cheap roll."},
             lambda r: f"Text: {r['text']}\n"),
    "MNLI": ({"premise": "You are not being rude.", "hypothesis": "You think before you speak.", "label": 1, "idx": 0},
             lambda r: f"sentence 1: {r['premise']}\nsentence 2: {r['hypothesis']}"),
    "CB": ({"premise": "He's weird enough.", "hypothesis": "she couldn't lie in bed", "idx": 0, "label": 1},
           lambda r: f"sentence 1: {r['premise']}\nsentence 2: {r['hypothesis']}"),
    "RTE": ({"sentence1": "Humans appeared 120,000 years ago.", "sentence2": "Humans existed 10,000 years ago.",
             "label": 0, "idx": 0},
            lambda r: f"sentence 1: {r['sentence1']}\nsentence 2: {r['sentence2']}"),
    "QQP": ({"question1": "Does God exist?", "question2": "Is there a God?", "label": 1, "idx": 0},
            lambda r: f"first sentence: {r['question1']}\nsecond sentence: {r['question2']}"),
    "BoolQA": ({"question": "was the color orange named after the fruit",
                "passage": "Orange (colour) -- The colour orange is named after the fruit.", "idx": 0, "label": 1},
               lambda r: f"question: {r['question']}\npassage: {r['passage']}"),
    "MultiRC": ({"paragraph": "When a stream slows down, it drops its sediments.", "question": "What drops?",
                 "answer": "Sediments", "idx": {"paragraph": 0, "question": 0, "answer": 0}, "label": 1},
                lambda r: f"paragraph: {r['paragraph']}\nquestion: {r['question']}\ncandidate answer: {r['answer']}"),
    "WiC": ({"word": "call", "sentence1": "After two raises there was a call.",
             "sentence2": "The salesman's call on a customer.", "start1": 36, "start2": 16, "end1": 40, "end2": 20,
             "idx": 0, "label": 0},
            lambda r: f"word: {r['word']}\n{r['sentence1']}\n{r['sentence2']}"),
    "COPA": ({"premise": "The host cancelled the party.", "choice1": "She was certain she had the flu.",
              "choice2": "She worried she would catch the flu.", "question": "cause", "idx": 0, "label": 0},
             lambda r: f'Which sentence is the {r["question"]} of "{r["premise"]}"? Choose one between A and B.\n'
                       f"A: {r['choice1']}\nB: {r['choice2']}"),
    "IMDB": ({"text": "Nothing in this film interested me.", "label": 0}, lambda r: r["text"]),
    "SST-2": ({"sentence": "does n't deserve a passing grade ( even on a curve ) . ", "label": 0, "idx": 0},
              lambda r: f"Text: {r['sentence']}"),
}
SPLITS = {name: ("train", "validation") for name in ("CB", "COPA", "QQP", "RTE", "BoolQA", "MultiRC", "WiC", "SST-2")}
SPLITS |= {"MNLI": ("train", "validation_matched")}  # the rest read their Hub test split


def olora_input(dataset: str, row: dict) -> str:
    """O-LoRA's model input for ``row`` (src/uie_collator.py with --add_task_name and --add_dataset_name)."""
    group = GROUP[dataset]
    instruction = "{0}\nAnswer:" if group == "COPA" else (
        INSTRUCTIONS[group] + "Option: " + ", ".join(LABELS[dataset]) + " \n{0}\nAnswer:")
    return f"Task:{group}\nDataset:{dataset}\n" + instruction.replace("{0}", ROWS[dataset][1](row))


def label_word(dataset: str, hub_label: int) -> str:
    return HUB_WORDS.get(dataset, LABELS[dataset])[hub_label]


def test_every_definition_is_one_of_olora_s_fifteen_datasets():
    assert sorted(path.stem for path in CL.glob("*.yaml")) == sorted(NAMES.values())
    taken = {path.stem for folder in ("tasks", "tasks/hub") for path in resolve_task_dir(folder).glob("*.yaml")}
    assert not taken & set(NAMES.values())


@pytest.mark.parametrize("dataset", sorted(NAMES))
def test_a_definition_maps_the_hub_label_ids_to_olora_s_label_words(dataset):
    definition = read_definition(CL / f"{NAMES[dataset]}.yaml")
    words = HUB_WORDS.get(dataset, LABELS[dataset])
    assert definition["type"] == "text_to_text"
    assert {str(key): value for key, value in definition["label_map"].items()} == {
        str(i): word for i, word in enumerate(words)}
    assert sorted(words) == sorted(LABELS[dataset])
    if dataset != "COPA":
        assert "Option: " + ", ".join(LABELS[dataset]) + " \n" in definition["prompt"]


@pytest.mark.parametrize("dataset", sorted(NAMES))
def test_a_definition_reads_its_hub_layout_into_olora_s_input_and_label_word(dataset, monkeypatch):
    spec = load_task_spec(NAMES[dataset], CL)
    row = ROWS[dataset][0]
    label = "topic" if dataset == "yahoo" else "label"
    other = {**row, label: 1 - row[label] if row[label] in (0, 1) else 0}
    asked = []

    def load_dataset(path, config=None, split=None, revision=None):
        asked.append(split)
        return Dataset.from_list([row, other] * 10)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    splits = build_splits(spec, read_source(spec), SplitSizes(train=8, val=0, test=None))
    assert sorted(asked) == sorted(SPLITS.get(dataset, ("train", "test")))
    assert kind_of(spec).texts(splits.test)
    expected = {(olora_input(dataset, r), label_word(dataset, r[label])) for r in (row, other)}
    assert set(zip(splits.test["text"], splits.test["target"])) == expected


@pytest.mark.parametrize("preset", sorted(ORDERS))
def test_an_order_preset_names_olora_s_tasks_in_olora_s_order(preset):
    cfg = compose_train([f"tasks={preset}"])
    assert list(cfg.tasks.order) == [NAMES[dataset] for dataset in ORDERS[preset]]
    assert resolve_task_dir(cfg.task_dir).resolve() == CL.resolve()


@pytest.mark.parametrize("experiment, preset", [
    ("olora_standard", "olora_standard_1"), ("olora_standard", "olora_standard_3"),
    ("olora_long", "olora_long_4"), ("olora_long", "olora_long_6")])
def test_an_olora_experiment_sizes_every_task_as_olora_s_files_do(experiment, preset):
    default = compose_train([f"experiment={experiment}"])
    cfg = compose_train([f"experiment={experiment}", f"tasks={preset}"])
    first = "olora_standard_1" if experiment == "olora_standard" else "olora_long_4"
    assert list(default.tasks.order) == [NAMES[d] for d in ORDERS[first]]
    assert list(cfg.tasks.order) == [NAMES[d] for d in ORDERS[preset]]
    check_config(cfg)
    data = OmegaConf.to_container(cfg.data)
    check_task_sizes(data, list(cfg.tasks.order))
    own = data["task_sizes"]
    train = {name: own.get(name, {}).get("train_size", data["train_size"]) for name in cfg.tasks.order}
    # training rows of each task in O-LoRA's CL_Benchmark train.json files and logs (None: the whole Hub split)
    olora = {"cl_dbpedia": 14000, "cl_amazon": 5000, "cl_yahoo": 10000, "cl_agnews": 4000, "cl_yelp": 5000,
             "cl_mnli": 3000, "cl_cb": None, "cl_copa": None, "cl_qqp": 2000, "cl_rte": 2000, "cl_imdb": 2000,
             "cl_sst2": 2000, "cl_multirc": 2000, "cl_boolq": 2000, "cl_wic": 2000}
    assert train == {name: olora[name] for name in cfg.tasks.order}
    assert (data["val_size"], data["test_size"], cfg.trainer.max_epochs) == (0, 7600, 1)
    assert cfg.backbone.name == "google-t5/t5-large" and cfg.adapter.method == "lora"
    assert (cfg.adapter.rank, cfg.adapter.alpha, list(cfg.adapter.targets)) == (8, 32.0, ["query", "value"])
    assert cfg.optim.learning_rate == 1.0e-3
