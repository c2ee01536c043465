"""The command-line entry points: ``seqadapt`` (train) and the ``seqadapt-*`` commands of ``pyproject.toml``."""


def described(doc: str | None) -> str:
    """A module docstring's first paragraph as ``--help`` shows it: one paragraph, without reST's double backticks."""
    first = (doc or "").strip().split("\n\n")[0]
    return " ".join(line.strip() for line in first.splitlines()).replace("``", "")
