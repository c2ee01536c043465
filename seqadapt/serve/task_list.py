"""What ``GET /tasks`` says of each served task: its kind, the fields a request gives, its labels, what it scored
when learned (metric, score), its version and stage, and where it was imported from, if it was."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seqadapt.artefacts import ArtefactError, read_manifest, task_artefact_dir
from seqadapt.serving import LoadedStream


def describe(run_dir: Path, stream: LoadedStream) -> list[dict[str, Any]]:
    """Each served task as ``GET /tasks`` lists it, read from its sealed manifest when the set was loaded."""
    module, described = stream.module, []
    for name in stream.tasks:
        spec, kind = module.specs[name], module.kind(name)
        entry: dict[str, Any] = {"task": name, "kind": spec.type, "fields": list(kind.input_fields(spec)),
                                 "labels": list(spec.labels)}
        try:
            manifest = read_manifest(task_artefact_dir(run_dir, name))
        except ArtefactError:  # changed since it was loaded: the next reload describes the new one
            described.append(entry)
            continue
        learned = manifest["learned"]
        entry.update({"metric": learned["metric"], "score": learned["score"], "version": manifest.get("version", 1),
                      "stage": manifest["stage"], "imported_from": manifest.get("imported_from")})
        described.append(entry)
    return described
