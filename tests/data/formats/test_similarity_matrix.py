"""The similarity-matrix format: a square matrix of pair scores plus a file of documents -> one row per pair."""

import importlib.metadata

import pytest

from seqadapt.data.formats.similarity_matrix import read_similarity_matrix
from seqadapt.errors import DataFileError

UPPER = "1\t0.5\t0.25\n0\t1\t0.75\n0\t0\t1\n"
PAIRS = {"doc_a": ["doc one", "doc one", "doc two"], "doc_b": ["doc two", "doc three", "doc three"],
         "similarity": ["0.5", "0.25", "0.75"]}


def read(tmp_path, matrix: str, lines: bytes = b"doc one\ndoc two\n\ndoc three\n", **options):
    (tmp_path / "docs.txt").write_bytes(lines)
    path = tmp_path / "matrix.txt"
    path.write_text(matrix)
    return read_similarity_matrix(path, matrix, {"documents": "docs.txt", **options})


def test_three_documents_give_their_three_unordered_pairs(tmp_path):
    assert read(tmp_path, UPPER).to_dict() == PAIRS  # the blank documents line is skipped
    full = "1 0.5 0.25\n0.5 1 0.75\n0.25 0.75 1\n"  # full and symmetric, space-separated: the same pairs
    assert read(tmp_path, full).to_dict() == PAIRS


def test_a_matrix_that_gives_a_pair_two_scores_or_is_not_square_is_refused(tmp_path):
    with pytest.raises(DataFileError, match=r"neither symmetric nor upper-triangular: row 3, column 2 is 0.7 but row 2, "
                                            r"column 3 is 0.75"):
        read(tmp_path, "1 0.5 0.25\n0.5 1 0.75\n0.25 0.7 1\n")
    with pytest.raises(DataFileError, match=r"matrix row 2 has 2 values but there are 3 rows"):
        read(tmp_path, "1 0.5 0.25\n0 1\n0 0 1\n")
    with pytest.raises(DataFileError, match=r"matrix row 1, column 2 is 'high', not a number"):
        read(tmp_path, "1 high 0.25\n0 1 0.75\n0 0 1\n")
    with pytest.raises(DataFileError, match=r"scores 3 documents but docs.txt holds 2 non-blank lines"):
        read(tmp_path, UPPER, b"doc one\ndoc two\n")


def test_the_documents_file_is_named_found_and_decoded_as_declared(tmp_path):
    latin = b"caf\xe9 one\ndoc two\ndoc three\n"
    assert read(tmp_path, UPPER, latin, documents_encoding="latin-1")["doc_a"][0] == "caf\u00e9 one"
    with pytest.raises(DataFileError, match=r"docs.txt is not valid utf-8 \(byte offset 3\); set source.documents_encoding"):
        read(tmp_path, UPPER, latin)
    with pytest.raises(DataFileError, match=r"source.documents_encoding 'klingon' is not an encoding"):
        read(tmp_path, UPPER, documents_encoding="klingon")
    with pytest.raises(DataFileError, match=r"documents file .*missing.txt \(source.documents, next to matrix.txt\) not found"):
        read(tmp_path, UPPER, documents="missing.txt")
    path = tmp_path / "matrix.txt"
    with pytest.raises(DataFileError, match=r"source has no 'documents'; add `documents: "):
        read_similarity_matrix(path, UPPER, {})


@pytest.mark.integration
def test_the_lee_corpus_in_gensim_gives_1225_pairs_of_50_documents():
    try:
        importlib.metadata.distribution("gensim")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("gensim==4.4.0 is not installed (pip install --no-deps gensim==4.4.0)")
    from seqadapt.backbone import package_path

    path = package_path("gensim", "gensim/test/test_data/similarities0-1.txt")
    options = {"package": "gensim", "documents": "gensim/test/test_data/lee.cor", "documents_encoding": "latin-1"}
    rows = read_similarity_matrix(path, path.read_text(encoding="ascii"), options)
    assert len(rows) == 1225 and len(set(rows["doc_a"]) | set(rows["doc_b"])) == 50
    assert rows[0]["similarity"] == "0.3" and rows[0]["doc_a"].startswith("The national executive of the strife-torn")
    assert sorted(float(value) for value in rows["similarity"])[::1224] == [0.2, 1.0]
