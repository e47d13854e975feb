"""Shared fixtures. Helpers that tests import live in helpers.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import VIDEOS, free_port

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def videos() -> Path:
    return VIDEOS


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """The tiny random-weight Qwen2-VL and Qwen2, built once per test session."""
    from curation.tiny_models import build_tiny_models

    return build_tiny_models(tmp_path_factory.mktemp("tiny_models"))


BUCKET = "curation-test"


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server (one a test module) and the AWS variables that point every client
    (ours, ffmpeg-free) at it while the module runs; yields the bucket's URI."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}  # fmt: skip
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        import boto3

        client = boto3.client("s3")
        deadline = time.time() + 30
        while True:
            try:
                client.create_bucket(Bucket=BUCKET)
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        yield f"s3://{BUCKET}"
    finally:
        server.terminate()
        server.wait()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def offline_run(tiny_models, tmp_path_factory) -> Path:
    """A finished offline run of four sources (tests/offline_run.py), made once per session."""
    from offline_run import make_offline_run

    return make_offline_run(tiny_models, tmp_path_factory.mktemp("offline_run"))
