"""A real registry for the manifest tests: Debian's ``docker-registry`` (distribution 2.8.2) and skopeo.

Loaded from ``conftest.py`` through ``pytest_plugins``. The registry listens on a
free 127.0.0.1 port with its own config (filesystem storage in a temp dir, no
``storage.cache``: the cache would hide blobs removed behind its back). Images are
built in Python (``jobs.images``) and pushed with skopeo; the tests then damage the
registry's disk or the emulated bucket directly.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import requests

from jobs.emulator import free_port, stop_process
from jobs.images import Image, make_index, sha256_digest, write_dir_layout, write_oci_layout

CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
health:
  storagedriver:
    enabled: false
"""


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed; run tests/system-deps.sh (apt-get install docker-registry skopeo)")
    return path


class Registry:
    """``with Registry(tmp) as reg:``; ``reg.url`` is ``http://127.0.0.1:PORT``, ``reg.host`` the name part."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.root = self.workdir / "storage"
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self._process: subprocess.Popen | None = None

    def start(self) -> Registry:
        binary = _require("docker-registry")
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "config.yml"
        config.write_text(CONFIG.format(root=self.root, port=self.port))
        self._log = (self.workdir / "registry.log").open("wb")
        self._process = subprocess.Popen(
            [binary, "serve", str(config)], stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {(self.workdir / 'registry.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/v2/", timeout=1):
                    return self
            except urllib.error.HTTPError:  # an answer (a 401 where auth is configured): it is up
                return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("docker-registry did not answer within 15s")

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
        self._process = None
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self) -> Registry:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- pushing --------------------------------------------------------------------------

    def _copy(self, source: str, repo: str, tag: str, *, all_images: bool) -> None:
        command = [_require("skopeo"), "copy", "--quiet", "--dest-tls-verify=false", "--preserve-digests"]
        if all_images:
            command.append("--all")
        command += [source, f"docker://{self.host}/{repo}:{tag}"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"skopeo copy failed: {result.stderr.strip()}")

    def push(self, image: Image, repo: str, tag: str) -> None:
        """One single-platform image: OCI through an ``oci:`` layout, Docker through ``dir:``."""
        layout = self.workdir / "layouts" / f"{repo.replace('/', '_')}-{tag}"
        if image.media_type.startswith("application/vnd.oci"):
            write_oci_layout(layout, [(image.manifest, image.media_type, tag)], image.blobs)
            self._copy(f"oci:{layout}:{tag}", repo, tag, all_images=False)
        else:
            write_dir_layout(layout, image.manifest, image.blobs)
            self._copy(f"dir:{layout}", repo, tag, all_images=False)

    def push_index(self, platforms: list[tuple[Image, str, str]], repo: str, tag: str, *, oci: bool) -> bytes:
        """A multi-platform index (OCI) or manifest list (Docker) with every child; returns its bytes."""
        index = make_index(platforms, oci=oci)
        layout = self.workdir / "layouts" / f"{repo.replace('/', '_')}-{tag}"
        blobs: dict[str, bytes] = {}
        for image, _, _ in platforms:
            blobs.update(image.blobs)
        if oci:
            children = {image.digest: image.manifest for image, _, _ in platforms}
            write_oci_layout(layout, [(index, "application/vnd.oci.image.index.v1+json", tag)], {**blobs, **children})
            self._copy(f"oci:{layout}:{tag}", repo, tag, all_images=True)
        else:
            write_dir_layout(layout, index, blobs, {image.digest: image.manifest for image, _, _ in platforms})
            self._copy(f"dir:{layout}", repo, tag, all_images=True)
        return index

    # --- the registry's disk --------------------------------------------------------------

    @property
    def _v2(self) -> Path:
        return self.root / "docker" / "registry" / "v2"

    def blob_data(self, digest: str) -> Path:
        hex_digest = digest.split(":", 1)[1]
        return self._v2 / "blobs" / "sha256" / hex_digest[:2] / hex_digest / "data"

    def revision_link(self, repo: str, digest: str) -> Path:
        return self._v2 / "repositories" / repo / "_manifests" / "revisions" / "sha256" / digest.split(":", 1)[1]

    def layer_digests(self) -> set[str]:
        """Every config and layer blob linked into any repository (manifests excluded), as GCR stores them."""
        found = set()
        for link in (self._v2 / "repositories").glob("**/_layers/sha256/*/link"):
            found.add(link.read_text().strip())
        return found


def v2(reg: Registry) -> Path:
    return reg.root / "docker" / "registry" / "v2"


def stored_blobs(reg: Registry) -> dict[str, Path]:
    """Every blob the registry's storage holds (layers, configs and manifests alike), by digest."""
    return {f"sha256:{data.parent.name}": data for data in (v2(reg) / "blobs" / "sha256").glob("*/*/data")}


def manifest_revisions(reg: Registry) -> set[tuple[str, str]]:
    """(repository, digest) of every manifest revision the registry still has, tagged or not:
    the mark phase of distribution's garbage collector starts from exactly these."""
    found = set()
    repositories = v2(reg) / "repositories"
    for link in repositories.glob("**/_manifests/revisions/sha256/*/link"):
        repo = link.parents[4].relative_to(repositories).as_posix()
        found.add((repo, link.read_text().strip()))
    return found


def garbage_collect_dry_run(reg: Registry, *flags: str) -> set[str]:
    """The blobs ``docker-registry garbage-collect --dry-run [FLAGS]`` calls eligible for deletion."""
    config = str(reg.workdir / "config.yml")
    command = [_require("docker-registry"), "garbage-collect", "--dry-run", *flags, config]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()[-2000:]}"
    eligible = set(re.findall(r"^blob eligible for deletion: (sha256:[0-9a-f]{64})$", done.stdout, re.M))
    summary = re.search(r"^\d+ blobs marked, (\d+) blobs and \d+ manifests eligible for deletion$", done.stdout, re.M)
    assert summary is not None, f"garbage-collect printed no summary line:\n{done.stdout[-2000:]}"
    assert int(summary.group(1)) == len(eligible), "every eligible blob is listed on a line of its own"
    return eligible


def upload_without_manifest(reg: Registry, repo: str, blob: bytes) -> None:
    """A push that died after its layer upload: the blob is linked into the repository, and no
    manifest will ever name it."""
    started = requests.post(f"{reg.url}/v2/{repo}/blobs/uploads/", timeout=10)
    assert started.status_code == 202, started.text
    location = requests.compat.urljoin(reg.url, started.headers["Location"])
    done = requests.put(location, params={"digest": sha256_digest(blob)}, data=blob, timeout=10)
    assert done.status_code == 201, done.text


def split_storage(reg: Registry) -> tuple[dict[str, Path], set[str]]:
    """The registry's blobs as (configs and layers, manifests).

    A config or layer is uploaded as a blob and linked under a repository's ``_layers``; a
    manifest is PUT and linked under ``_manifests`` (a deleted one loses that link, but its blob
    stays until the collector runs). GCR keeps configs and layers in the bucket and manifests in
    its own database, so only the first set belongs in the bucket."""
    stored = stored_blobs(reg)
    layer_links = reg.layer_digests()
    return {d: p for d, p in stored.items() if d in layer_links}, set(stored) - layer_links


def complete_directory_source(reg: Registry, folder: Path, *, leave_out: frozenset[str] = frozenset()) -> Path:
    """Every manifest revision the registry still has, tagged or not, as a directory source:
    one folder per repository, each file named by its digest and holding the exact bytes.
    ``leave_out`` names manifest digests to omit (a folder that misses some, whatever it claims)."""
    stored = stored_blobs(reg)
    for repo, digest in manifest_revisions(reg):
        if digest in leave_out:
            continue
        target = folder / repo / digest
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(stored[digest].read_bytes())
    return folder


@pytest.fixture
def registry(tmp_path):
    """A fresh, empty registry for one test (it starts in about 40 ms)."""
    with Registry(tmp_path / "registry") as reg:
        yield reg


def copy_blobs_to_bucket(reg: Registry, bucket, prefix: str = "containers/images/") -> set[str]:
    """Upload every config and layer blob of ``reg`` into ``bucket`` as ``containers/images/<digest>``."""
    digests = reg.layer_digests()
    for digest in sorted(digests):
        bucket.blob(prefix + digest).upload_from_string(reg.blob_data(digest).read_bytes())
    return digests
