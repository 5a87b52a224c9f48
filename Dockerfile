# syntax=docker/dockerfile:1
# One image for the five services; the argument picks the service:
#   docker build -t motcua:dev .
#   docker run --rm -p 8001:8080 --env-file my.env motcua:dev serve intake     # or workflow, digitization, payments, reporting
#   docker run --rm --env-file my.env motcua:dev migrate intake                # Alembic upgrade of that service's database
# Settings come from the environment only (README "Settings"). The image listens on 0.0.0.0:8080, runs as
# uid 10001 and writes nothing outside /tmp, so it runs with a read-only root file system.
# The base by digest (the tag python:3.11.11-slim-bookworm): a rebuild gets the same system and interpreter. To move
# it, pull the new tag, take its digest (docker buildx imagetools inspect) and change both here.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm@sha256:081075da77b2b55c23c088251026fb69a7b2bf92471e491ff5fd75c192fd38e5

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/motcua
WORKDIR /src
# The dependencies first, from the hashed lock (deploy/requirements.lock: the project's dependencies at the versions
# of constraints.txt, and the build back end, every file by its sha256): pip refuses any file whose hash differs and
# any package the lock does not pin. A change to the code alone reuses this layer.
COPY deploy/requirements.lock ./deploy/requirements.lock
RUN /opt/motcua/bin/pip install --require-hashes --only-binary=:all: --no-deps -r deploy/requirements.lock
COPY pyproject.toml constraints.txt README.md ./
COPY shared ./shared
COPY services ./services
COPY motcua ./motcua
# The project itself: built with the locked setuptools (no build isolation, no index), so nothing unhashed comes in.
RUN /opt/motcua/bin/pip install --no-deps --no-build-isolation --no-index . \
 && /opt/motcua/bin/python -m compileall -q /opt/motcua/lib

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="motcua" \
      org.opencontainers.image.description="Backend for Vietnam's one-stop shops: intake, workflow, digitization, payments, reporting"
RUN groupadd --system --gid 10001 motcua \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin motcua
COPY --from=build /opt/motcua /opt/motcua
ENV PATH=/opt/motcua/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8080
WORKDIR /opt/motcua
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=2)"]
ENTRYPOINT ["motcua"]
CMD ["serve", "intake"]
