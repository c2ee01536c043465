"""Text-to-text: what a definition needs, how rows become prompts and targets, and how generated ids are read."""

import re

import pytest
import torch
from datasets import Dataset

from seqadapt.data import TaskDataError, TaskDefinitionError, TaskSpec
from seqadapt.kinds import RequestError, get_kind
from seqadapt.kinds.base import HeadContext
from seqadapt.kinds.text_to_text import LanguageModelHead, fill_prompt
from tests.families.tiny import tiny_tokenizer

KIND = get_kind("text_to_text")


def spec(**changes) -> TaskSpec:
    return TaskSpec(**{"name": "past", "source": {}, "type": "text_to_text", "prompt": "Past tense of {input}:",
                       "max_target_length": 6, **changes})


def test_a_definition_needs_a_prompt_with_the_input_and_no_labels():
    with pytest.raises(TaskDefinitionError, match=r"prompt 'Say it' has no '\{input\}' placeholder"):
        spec(prompt="Say it")
    with pytest.raises(TaskDefinitionError, match="declares labels.*remove 'labels'"):
        spec(labels=("a", "b"))
    with pytest.raises(TaskDefinitionError, match="max_target_length must be >= 1"):
        spec(max_target_length=0)


def test_prepare_puts_inputs_through_the_prompt_and_keeps_every_gold():
    rows = KIND.prepare(spec(), Dataset.from_dict({"input": ["walk", "go"], "target": [["walked"], ["went", "gone"]]}), "train")
    assert rows["text"] == ["Past tense of walk:", "Past tense of go:"]
    assert rows["target"] == ["walked", "went"] and rows["targets"] == [["walked"], ["went", "gone"]]
    assert KIND.show(spec(), rows[1]) == "Past tense of go: => went"


def test_prompts_are_filled_by_plain_substitution_exactly_as_str_format_fills_valid_ones():
    from seqadapt.data import load_task_spec

    packaged = load_task_spec("past_tense").prompt  # the definition is read; its data is not fetched
    for text in ["walk", "{0}", "{input}", "a}b{", "{input.__class__}", ""]:  # an input's braces are its own text
        assert fill_prompt(packaged, text) == packaged.format(input=text)
    escaped = "{{json}}: {input} -> {input} }}"
    assert fill_prompt(escaped, "go") == escaped.format(input="go") == "{json}: go -> go }"
    # nothing but the substitution happens: a format spec (refused when a definition is read) is never applied
    assert fill_prompt("{input:>900000000}", "x") == "x"


def test_an_empty_target_names_its_row_and_a_missing_column_its_key():
    with pytest.raises(TaskDataError, match=r"\(test split\): row 1 has an empty target"):
        KIND.prepare(spec(), Dataset.from_dict({"input": ["a", "b"], "target": ["x", " "]}), "test")
    with pytest.raises(TaskDataError, match="column 'answer' is not in the data.*fix target_field"):
        KIND.prepare(spec(target_field="answer"), Dataset.from_dict({"input": ["a"], "target": ["x"]}), "test")


def test_targets_are_encoded_after_a_space_and_end_with_eos():
    tok = tiny_tokenizer(seq2seq=False)
    tok.pad_token = tok.eos_token
    rows = KIND.prepare(spec(), Dataset.from_dict({"input": ["red"], "target": ["blue navy green olive red crimson"]}), "train")
    feature = KIND.encode(spec(), rows, tok, max_length=16)[0]
    assert feature["input_ids"] == tok("Past tense of red:")["input_ids"]
    assert len(feature["labels"]) == 6 and feature["labels"][-1] == tok.eos_token_id  # truncated to max_target_length
    assert feature["labels"][:-1] == tok(" blue navy green olive red crimson", add_special_tokens=False)["input_ids"][:5]


def test_a_request_needs_the_input_field():
    assert KIND.request(spec(), {"input": "walk"}, "input line 1")["text"] == "Past tense of walk:"
    with pytest.raises(RequestError, match='input line 2: "input" is missing'):
        KIND.request(spec(), {"text": "walk"}, "input line 2")


def test_the_head_needs_a_language_model():
    with pytest.raises(ValueError, match="build SeqAdaptModule with tokenizer"):
        KIND.make_head(spec(), HeadContext(hidden_size=8), None)


def test_outputs_are_read_back_as_text_up_to_eos(family_dirs):
    from seqadapt.backbone import BackboneConfig, load_backbone
    from seqadapt.families import model_family

    backbone = load_backbone(BackboneConfig(name="gpt2", path=str(family_dirs["gpt2"])))
    head = LanguageModelHead(HeadContext(32, model=backbone.model, family=model_family(backbone.model),
                                         tokenizer=backbone.tokenizer), max_new_tokens=8)
    tok = backbone.tokenizer
    walked = tok(" red apple", add_special_tokens=False)["input_ids"]
    outputs = torch.tensor([[0.5, *walked, -1, -1]], dtype=torch.float)  # EOS generated, then nothing
    assert head.texts(outputs) == ["red apple"]
    labels = torch.tensor([[*walked, tok.eos_token_id, -100]])
    assert KIND.correct(outputs, {"labels": labels}, head).tolist() == [True]
    assert KIND.predictions(spec(), outputs, {}, Dataset.from_dict({"text": ["x"]}), head) == [{"generated": "red apple", "nll": 0.5}]
    assert KIND.confidence(outputs, torch.ones(1, 3)).item() == pytest.approx(torch.exp(torch.tensor(-0.5)).item() - 1)


def test_training_moves_only_the_tasks_adapters_and_lowers_the_target_loss(family_dirs):
    from seqadapt.adapters import AdapterConfig
    from seqadapt.backbone import BackboneConfig, load_backbone, weights_hash
    from seqadapt.data import make_loader
    from seqadapt.model import OptimConfig, SeqAdaptModule

    backbone = load_backbone(BackboneConfig(name="gpt2", path=str(family_dirs["gpt2"])))
    torch.manual_seed(0)
    module = SeqAdaptModule(backbone.model, AdapterConfig(bottleneck=8), tokenizer=backbone.tokenizer,
                            optim=OptimConfig(learning_rate=1e-2))
    task = spec(prompt="{input} colour:")
    rows = KIND.prepare(task, Dataset.from_dict({"input": ["the red house", "a blue river"] * 4,
                                                 "target": ["red", "blue"] * 4}), "train")
    module.add_task(task)
    module.set_active_task("past")
    batch = next(iter(make_loader((task, rows), backbone.tokenizer, max_length=16, batch_size=8)))
    before, optimizer = weights_hash(backbone.model), module.make_optimizer()
    losses = []
    for _ in range(30):
        loss = KIND.loss(KIND.train_outputs(module, "past", batch), batch["labels"], module.heads["past"])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    # a tiny random LM's logits are bounded by its small tied embeddings: the loss falls, but not far
    assert losses[-1] < losses[0] - 0.2
    assert weights_hash(backbone.model) == before  # the frozen LM (and its head) never moved


MNLI = {"name": "nli", "text_fields": ("premise", "hypothesis"), "target_field": "label",
        "label_map": {"0": "entailment", "1": "neutral", "2": "contradiction"},
        "prompt": "Option: neutral, entailment, contradiction \n"
                  "sentence 1: {premise}\nsentence 2: {hypothesis}\nAnswer:"}


def test_a_prompt_names_each_text_field_and_label_map_turns_ids_into_words():
    rows = Dataset.from_dict({"premise": ["You are not being rude.", "A {b} c."],
                              "hypothesis": ["You think first.", "d"], "label": [1, 2]})
    prepared = KIND.prepare(spec(**MNLI), rows, "test")
    # O-LoRA's MNLI input for the first row, written out by hand (braces in a text stay its own text)
    assert prepared["text"] == [
        "Option: neutral, entailment, contradiction \n"
        "sentence 1: You are not being rude.\nsentence 2: You think first.\nAnswer:",
        "Option: neutral, entailment, contradiction \nsentence 1: A {b} c.\nsentence 2: d\nAnswer:"]
    assert prepared["target"] == ["neutral", "contradiction"]
    assert KIND.input_fields(spec(**MNLI)) == ("premise", "hypothesis")
    # {input} keeps its meaning for one input_field, which label_map maps too (a list of golds element-wise)
    one = spec(input_field="text", target_field="label", label_map={"0": "Bad", "1": "Good"},
               prompt="Text: {input}\nAnswer:")
    got = KIND.prepare(one, Dataset.from_dict({"text": ["Dull."], "label": [[0, 1]]}), "train")
    assert (got["text"], got["target"], got["targets"]) == (["Text: Dull.\nAnswer:"], ["Bad"], [["Bad", "Good"]])


def test_a_label_id_missing_from_label_map_names_the_task_the_value_and_the_fix():
    rows = Dataset.from_dict({"premise": ["a", "b", "c"], "hypothesis": ["x", "y", "z"], "label": [0, -1, -1]})
    with pytest.raises(TaskDataError, match=r"task 'nli' \(test split\): 2 targets are not keys of label_map "
                                            r"\['0', '1', '2'\]: \{'-1': 2\}\. "
                                            r"Add them to 'label_map' in tasks/nli\.yaml"):
        KIND.prepare(spec(**MNLI), rows, "test")
    with pytest.raises(TaskDataError, match="column 'hypothesis' is not in the data.*fix text_fields"):
        KIND.prepare(spec(**MNLI), Dataset.from_dict({"premise": ["a"], "label": [0]}), "test")


def test_a_request_names_each_text_field():
    got = KIND.request(spec(**MNLI), {"premise": "It rains.", "hypothesis": "It is wet."}, "input line 1")["text"]
    assert got == ("Option: neutral, entailment, contradiction \n"
                   "sentence 1: It rains.\nsentence 2: It is wet.\nAnswer:")
    missing = r"""input line 2: "hypothesis" is missing; task 'nli' reads \['premise', 'hypothesis'\]"""
    with pytest.raises(RequestError, match=missing):
        KIND.request(spec(**MNLI), {"premise": "It rains.", "input": "x"}, "input line 2")


@pytest.mark.parametrize("bad", ["{input}", "{label}", "{premise:>900000000}", "{premise!r}", "{premise.__class__}",
                                 "{hypothesis[0]}", "{0}", "{}"])
def test_a_prompt_of_text_fields_refuses_any_other_placeholder_naming_it_and_the_allowed_names(bad):
    with pytest.raises(TaskDefinitionError, match=rf"holds {re.escape(bad)}; the placeholders are \{{premise\}}, "
                                                  r"\{hypothesis\}, without a format spec, conversion, attribute, "
                                                  r"index or other name\. write each of text_fields as \{name\}"):
        spec(**{**MNLI, "prompt": "{premise} {hypothesis} " + bad})


def test_a_prompt_of_text_fields_keeps_escaped_braces_and_names_every_field():
    escaped = spec(**{**MNLI, "prompt": "{{json}} {premise} }} {hypothesis}"})
    assert KIND.request(escaped, {"premise": "p", "hypothesis": "h"}, "x")["text"] == "{json} p } h"
    with pytest.raises(TaskDefinitionError, match=r"has no placeholder for text_fields \['hypothesis'\]"):
        spec(**{**MNLI, "prompt": "{premise} {{hypothesis}}"})
    with pytest.raises(TaskDefinitionError, match=r"text_fields must be a list of distinct column names.*"
                                                  r"\(text_fields: \[premise\] for one column\)"):
        spec(**{**MNLI, "text_fields": "premise", "prompt": "{premise}"})
    with pytest.raises(TaskDefinitionError, match="text_fields must be a list of distinct column names"):
        spec(**{**MNLI, "text_fields": ("premise", "premise"), "prompt": "{premise}"})


def test_a_definition_file_whose_prompt_names_a_field_it_does_not_list_is_refused_naming_the_file(tmp_path):
    from seqadapt.data import load_task_spec

    path = tmp_path / "nli.yaml"
    path.write_text("type: text_to_text\nsource: {kind: hf_dataset, path: nyu-mll/glue, name: rte}\n"
                    "text_fields: [sentence1, sentence2]\nprompt: \"1: {sentence1}\\n2: {sentence_2}\\nAnswer:\"\n")
    with pytest.raises(TaskDefinitionError, match=rf"^{re.escape(str(path))}: task 'nli': prompt .* holds "
                                                  r"\{sentence_2\}; the placeholders are \{sentence1\}, \{sentence2\}"):
        load_task_spec("nli", tmp_path)
    path.write_text(path.read_text().replace("sentence_2", "sentence2"))
    prompt = load_task_spec("nli", tmp_path).prompt
    texts = {"sentence1": "a {0}", "sentence2": "b"}
    assert fill_prompt(prompt, texts) == prompt.format(**texts) == "1: a {0}\n2: b\nAnswer:"
