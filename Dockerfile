# registry-scrub: one image that is both the Flex Template launcher and the Dataflow
# workers' sdk_container_image (docs/production.md, "The image").
#
#   Cloud Build:  jobs/deploy/deploy.sh image   (passes IMAGE, see jobs/deploy/cloudbuild.yaml)
#   By hand:      docker build --build-arg IMAGE=<the tag you push> -t <that tag> .
#
# The Beam version must equal the pin in pyproject.toml and requirements.lock;
# tests/test_dockerfile.py checks the three, and the build checks the installed SDK.
ARG BEAM_VERSION=2.77.0

# Base images: every one fully qualified (a short name fails under podman's and buildah's
# short-name policy) and pinned by digest beside its tag, so this file always builds from the
# same bytes. Each digest's source is the comment above it. `make pin-images` re-resolves every
# tag with crane and rewrites these lines: a release step (docs/production.md, "Pinned base
# images"). tests/test_dockerfile.py refuses a FROM that is not one of these ARGs, a name
# without its registry, and a tag without a digest unless a "tag-pinned:" comment says why.

# Worker boot entrypoint: Beam's SDK image of the very release pinned in pyproject.toml.
# tag-pinned: no public source gives this tag's digest and no registry was reachable when it was
# pinned; Beam publishes each release tag once. Run `make pin-images` before the next release.
ARG BEAM_SDK_IMAGE=docker.io/apache/beam_python3.11_sdk:2.77.0
# The runtime: Debian bookworm and Python 3.11.
# digest: the multi-platform index that docker-library/repo-info lists for this tag (Python 3.11.16,
# built 2026-08-25), repos/python/remote/3.11-slim-bookworm.md at commit bc9bbb47fc709dc4b29d3b128d66823b953b97a7.
ARG PYTHON_IMAGE=docker.io/library/python:3.11-slim-bookworm@sha256:fe556eaffd0d96abd8685b83bb8a69addd0dc730fa193669a7df0d49ddcfac02
# The Flex Template launcher binary (it does not depend on the Beam version). Tags: Google's
# "Flex Templates base images" page (cloud.google.com/dataflow/docs/reference/flex-templates-base-images);
# this tag's name is the image's com.google.cloud.dataflow.flex-templates.version label.
# tag-pinned: only one public source (a third-party note) gives a digest for this tag, which is not
# enough to pin the bytes of the image that submits every job; `make pin-images` resolves it
# from gcr.io as a release step (docs/production.md, "Pinned base images").
ARG LAUNCHER_IMAGE=gcr.io/dataflow-templates-base/python311-template-launcher-base:flex_templates_base_image_release_20260720_RC00

FROM ${BEAM_SDK_IMAGE} AS beam_sdk
FROM ${LAUNCHER_IMAGE} AS template_launcher

FROM ${PYTHON_IMAGE}
ARG BEAM_VERSION
# The image's own name: the template launcher hands it to the workers as their image.
ARG IMAGE=""

# Beam's worker boot entrypoint, from the SDK image of the very same Beam release.
COPY --from=beam_sdk /opt/apache/beam /opt/apache/beam
# The Flex Template launcher, which runs FLEX_TEMPLATE_PYTHON_PY_FILE to submit the job.
COPY --from=template_launcher /opt/google/dataflow/python_template_launcher /opt/google/dataflow/python_template_launcher

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /template

# Every dependency, and the build backend, exactly as locked (hash-checked). Regenerate
# requirements.lock with `make lock` after changing dependencies in pyproject.toml. The lock
# includes the `recovery` extra (zlib-ng): without it, scan.recover_images on the workers
# inflates layers with zlib, at about 1.5x the CPU (docs/recovery.md, "Cost").
COPY requirements.lock ./
RUN pip install --no-cache-dir --no-deps --require-hashes -r requirements.lock

# The project itself, built offline with the locked setuptools; its dependencies are all
# installed above, so --no-deps cannot hide a missing one: pip check below would fail.
COPY pyproject.toml README.m[d] ./
COPY pipeline ./pipeline
COPY jobs ./jobs
COPY config ./config
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
    && pip check \
    && python -c "import zlib_ng.zlib_ng" \
    && python -c "import apache_beam, sys; v = apache_beam.__version__; sys.exit(0 if v == '${BEAM_VERSION}' else f'Beam {v} installed, boot files are from ${BEAM_VERSION}')" \
    && test -x /opt/apache/beam/boot \
    && test -x /opt/google/dataflow/python_template_launcher

# The Flex Template launcher runs this thin entry file (jobs/template.py does the work).
ENV FLEX_TEMPLATE_PYTHON_PY_FILE=/template/jobs/flex_template.py \
    REGISTRY_SCRUB_SDK_IMAGE=${IMAGE}

# No USER: the image runs as root, like Google's pipeline_with_dependencies sample and Beam's
# own SDK images. The Flex Template launcher writes /var/log/dataflow/template_launcher/ and
# fails as any other user (python-docs-samples#13213), and Google documents no non-root
# worker setup. docs/production.md, "Why the image runs as root".

ENTRYPOINT ["/opt/apache/beam/boot"]
