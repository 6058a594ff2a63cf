# The scripts' image, for docker-compose.yml: python producer.py / consumer.py / admin.py.
# One stage is enough: every dependency installs from a wheel (--only-binary makes the build fail
# rather than compile), so no compiler or build tool ever enters the image.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# The user the scripts run as: no password, no shell, no home, not root.
RUN useradd --system --user-group --uid 10001 --no-create-home --shell /usr/sbin/nologin app

WORKDIR /app
COPY requirements.txt .
RUN pip install --only-binary=:all: -r requirements.txt

# Only the scripts and the package they import: .dockerignore lets nothing else in.
# The files stay root's, so the user running them cannot change them.
COPY *.py ./
COPY stream_pubsub ./stream_pubsub

USER 10001:10001
CMD ["python", "producer.py", "--help"]
