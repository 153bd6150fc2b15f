"""`make pin-images`: resolve each base image of the Dockerfile to its digest, with crane.

The Dockerfile names every base image in one ``ARG <NAME>_IMAGE=<registry>/<repository>:<tag>``
line, optionally followed by ``@sha256:<digest>``, and its ``FROM`` lines use only those ARGs.
This rewrites each such line with the digest the registry serves for the tag now
(``crane digest``), and the comment above it with where the digest came from. It is a
release step: it needs the registries (docs/production.md, "Pinned base images").

``image_refs`` and ``unpinned_reasons`` are the rules tests/test_dockerfile.py holds the
Dockerfile to: every reference fully qualified, and pinned by digest unless a
``# tag-pinned: <reason>`` comment stands above it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline.compat import UTC

IMAGE_ARG = re.compile(r"^ARG (?P<name>[A-Z0-9_]+_IMAGE)=(?P<ref>\S+)$", re.MULTILINE)
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
TAG_PINNED = "# tag-pinned:"
SOURCE = "# digest:"


@dataclass(frozen=True)
class ImageRef:
    arg: str  # the ARG's name, e.g. PYTHON_IMAGE
    ref: str  # as written: registry/repository:tag[@sha256:…]
    comment: tuple[str, ...]  # the comment lines right above the ARG

    @property
    def tagged(self) -> str:
        """The reference without its digest: what crane resolves."""
        return DIGEST.sub("", self.ref)

    @property
    def digest(self) -> str | None:
        match = DIGEST.search(self.ref)
        return match.group(0)[1:] if match else None

    @property
    def registry(self) -> str | None:
        """The registry host, or None when the name is short (docker.io implied)."""
        first, _, rest = self.tagged.partition("/")
        return first if rest and ("." in first or ":" in first or first == "localhost") else None

    @property
    def tag(self) -> str | None:
        last = self.tagged.rsplit("/", 1)[-1]
        return last.split(":", 1)[1] if ":" in last else None

    @property
    def tag_pinned_reason(self) -> str | None:
        for line in self.comment:
            if line.startswith(TAG_PINNED):
                return line[len(TAG_PINNED) :].strip() or None
        return None


def image_refs(dockerfile: str) -> list[ImageRef]:
    lines = dockerfile.splitlines()
    refs = []
    for index, line in enumerate(lines):
        match = IMAGE_ARG.match(line)
        if not match:
            continue
        above = index
        while above > 0 and lines[above - 1].startswith("#"):
            above -= 1
        refs.append(ImageRef(match["name"], match["ref"], tuple(lines[above:index])))
    return refs


def from_images(dockerfile: str) -> list[str]:
    """What each ``FROM`` names (before ``AS``)."""
    return re.findall(r"^FROM (?:--platform=\S+ )?(\S+)", dockerfile, re.MULTILINE)


def unpinned_reasons(dockerfile: str) -> list[str]:
    """Every way the Dockerfile's base images break the rule, one sentence each; [] when none."""
    refs = {ref.arg: ref for ref in image_refs(dockerfile)}
    problems = []
    for image in from_images(dockerfile):
        arg = re.fullmatch(r"\$\{?([A-Z0-9_]+)\}?", image)
        if not arg or arg.group(1) not in refs:
            problems.append(f"FROM {image}: name the base image in an ARG ..._IMAGE line, not in FROM")
    for ref in refs.values():
        if ref.registry is None:
            problems.append(f"{ref.arg}={ref.ref}: not fully qualified (write docker.io/… or gcr.io/…)")
        if ref.tag is None:
            problems.append(f"{ref.arg}={ref.ref}: no tag beside the digest")
        if ref.digest is None and ref.tag_pinned_reason is None:
            problems.append(f"{ref.arg}={ref.ref}: no @sha256 digest and no '{TAG_PINNED} <reason>' comment above it")
        if ref.digest is not None and not any(line.startswith(SOURCE) for line in ref.comment):
            problems.append(f"{ref.arg}: a digest without a '{SOURCE} <where it came from>' comment above it")
    return problems


def pin(dockerfile: str, resolve, when: str) -> str:
    """The Dockerfile with every image ARG pinned to ``resolve(tagged_ref)`` and its comment renewed."""
    lines = dockerfile.splitlines(keepends=True)
    for ref in reversed(image_refs(dockerfile)):
        index = next(i for i, line in enumerate(lines) if line.rstrip("\n") == f"ARG {ref.arg}={ref.ref}")
        digest = resolve(ref.tagged)
        start = index - len(ref.comment)
        # The pinning note is the comment's last paragraph, from its marker line on.
        marker = next((i for i, line in enumerate(ref.comment) if line.startswith((TAG_PINNED, SOURCE))), None)
        kept = ref.comment[:marker]
        lines[start : index + 1] = [
            *(line + "\n" for line in kept),
            f"{SOURCE} crane digest {ref.tagged}, {when} (make pin-images)\n",
            f"ARG {ref.arg}={ref.tagged}@{digest}\n",
        ]
    return "".join(lines)


def crane_digest(crane: str, extra: tuple[str, ...] = ()):
    def resolve(reference: str) -> str:
        done = subprocess.run(
            [crane, "digest", *extra, reference], capture_output=True, text=True, timeout=120, check=False
        )
        digest = done.stdout.strip()
        if done.returncode != 0 or not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            said = (done.stderr or done.stdout).strip().splitlines() or ["no digest"]
            raise SystemExit(f"pin-images: crane digest {reference}: {said[-1]}")  # crane's last line says why
        return digest

    return resolve


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="pin-images", description=__doc__.splitlines()[0])
    parser.add_argument("dockerfile", nargs="?", default="Dockerfile")
    parser.add_argument("--crane", default="crane", help="the crane binary (tests/install-peers.sh builds one)")
    parser.add_argument("--insecure", action="store_true", help="plain HTTP registries (crane --insecure)")
    args = parser.parse_args(argv)
    path = Path(args.dockerfile)
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    pinned = pin(path.read_text(), crane_digest(args.crane, ("--insecure",) if args.insecure else ()), when)
    path.write_text(pinned)
    for ref in image_refs(pinned):
        print(f"{ref.arg}={ref.ref}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
