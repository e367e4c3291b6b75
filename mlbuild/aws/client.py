"""The client factory: every boto3 client of mlbuild, configured one way.

Retries are botocore's "standard" mode (exponential backoff with jitter, throttling and
transient errors retried) with ``max_attempts`` attempts in all; ``connect_timeout`` and
``read_timeout`` bound each attempt. Credentials and region come from the standard AWS
chain (AWS_PROFILE, AWS_ACCESS_KEY_ID, ~/.aws, instance roles), never from here. An empty
``endpoint_url`` leaves the choice to botocore: AWS_ENDPOINT_URL when set, else AWS.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from mlbuild.errors import MlbuildError


def endpoint_name(endpoint_url: str | None = "") -> str:
    """Where requests go, for messages: the endpoint, AWS_ENDPOINT_URL, or "AWS"."""
    return endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or "AWS"


def client_config(*, max_attempts: int = 5, connect_timeout: float = 10.0,
                  read_timeout: float = 60.0, max_pool_connections: int = 10) -> Any:
    """The botocore ``Config`` of mlbuild's clients: standard retries, the timeouts, the pool;
    also for clients made elsewhere (Luigi's ``S3Client`` for plain Luigi tasks)."""
    from botocore.config import Config

    return Config(
        # total_max_attempts counts the first attempt; botocore's "max_attempts" would not,
        # so that "after N attempt(s)" in a message would be one short.
        retries={"total_max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=max_pool_connections,
    )


def client(service: str, *, endpoint_url: str | None = "", region: str | None = None,
           max_attempts: int = 5, connect_timeout: float = 10.0, read_timeout: float = 60.0,
           max_pool_connections: int = 10, on_send: Callable[..., Any] | None = None,
           error: type[MlbuildError] = MlbuildError, label: str | None = None) -> Any:
    """A boto3 client of ``service`` (``"s3"``, ``"batch"``, ``"logs"``, ``"ecr"``).

    ``on_send`` is called before every HTTP request the client sends, retries included
    (the S3 store counts requests with it). A client that cannot be made (no region, an
    unknown endpoint) raises ``error``, translated as any other AWS error; ``label`` names
    the service in that message (default: ``service``).
    """
    import boto3

    from mlbuild.aws.errors import AwsCall, translated

    config = client_config(max_attempts=max_attempts, connect_timeout=connect_timeout,
                           read_timeout=read_timeout, max_pool_connections=max_pool_connections)
    call = AwsCall(label or service, "set up a client", "",
                   endpoint=endpoint_name(endpoint_url))
    with translated(call, error=error):
        # A session per client: boto3's default session is not safe to share across threads.
        made = boto3.session.Session().client(
            service, endpoint_url=endpoint_url or None, region_name=region, config=config)
    if on_send is not None:
        made.meta.events.register(f"before-send.{made.meta.service_model.service_id.hyphenize()}",
                                  on_send)
    return made


def transfer_config(part_size: int, max_concurrency: int) -> Any:
    """boto3's TransferConfig for multipart transfers: ``part_size`` bytes per part, and
    the threshold above which a transfer is multipart."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size,
                          max_concurrency=max_concurrency)
