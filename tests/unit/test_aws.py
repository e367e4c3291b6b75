"""mlbuild.aws: the client factory's settings and the one error map, without a service."""

from __future__ import annotations

import pytest
from botocore import exceptions as bx

from mlbuild import aws
from mlbuild.errors import BatchError, ImageError, MlbuildError, ObjectMissingError, StoreError

CALL = aws.AwsCall("S3", "read", "s3://bucket/key", endpoint="http://127.0.0.1:1",
                   attempts=3, bucket="bucket")


def client_error(code: str, message: str = "said no", status: int = 400) -> bx.ClientError:
    return bx.ClientError({"Error": {"Code": code, "Message": message},
                           "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")


@pytest.mark.parametrize("exc, problem", [
    (bx.NoCredentialsError(), "credentials"),
    (bx.PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"), "credentials"),
    (bx.NoRegionError(), "region"),
    (client_error("NoSuchBucket"), "no_bucket"),
    (client_error("NoSuchKey"), "not_found"),
    (client_error("404"), "not_found"),
    (client_error("ResourceNotFoundException"), "not_found"),
    (client_error("AccessDenied"), "denied"),
    (client_error("InvalidAccessKeyId"), "denied"),
    (client_error("ThrottlingException"), "throttled"),
    (client_error("SlowDown"), "throttled"),
    (client_error("ClientException"), "refused"),
    (bx.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "unreachable"),
    (bx.ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), "unreachable"),
    (bx.ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), "unreachable"),
    (bx.ParamValidationError(report="Invalid type for parameter Key"), "invalid"),
    (bx.DataNotFoundError(data_path="x"), "failed"),
])
def test_each_aws_error_is_classified(exc, problem):
    assert aws.classify(exc)[0] == problem


def test_a_foreign_error_is_left_alone():
    error = KeyError("x")
    assert aws.classify(error) is None
    assert aws.translate(error, CALL, error=StoreError) is error


@pytest.mark.parametrize("exc, words, hint", [
    (bx.NoCredentialsError(), ["No AWS credentials were found to read s3://bucket/key", "S3"],
     "AWS_PROFILE"),
    (client_error("NoSuchBucket"), ["The bucket 'bucket' does not exist at http://127.0.0.1:1"],
     "create it"),
    (client_error("AccessDenied"), ["Access denied (AccessDenied) to read s3://bucket/key"],
     "AWS_ACCESS_KEY_ID"),
    (client_error("SlowDown"), ["throttled", "after 3 attempt(s)"], "run again"),
    (bx.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
     ["Cannot reach S3 at http://127.0.0.1:1 to read s3://bucket/key",
      "did not answer after 3 attempt(s)"], "AWS_ENDPOINT_URL"),
    (bx.ParamValidationError(report="Invalid type for parameter Key"),
     ["Cannot read s3://bucket/key", "Invalid type for parameter Key"], "setting"),
    (client_error("ClientException", "Job queue q does not exist."),
     ["refused to read s3://bucket/key: ClientException: Job queue q does not exist"], "check"),
])
def test_a_translated_error_names_service_action_resource_and_has_a_hint(exc, words, hint):
    error = aws.translate(exc, CALL, error=StoreError)
    assert type(error) is StoreError
    for word in words:
        assert word in error.message, error.message
    assert hint in error.hint
    assert str(error).count("Hint:") == 1


def test_callers_choose_the_class_and_the_hint_per_problem():
    error = aws.translate(client_error("NoSuchKey"), CALL, error=StoreError,
                          errors={"not_found": ObjectMissingError},
                          hints={"not_found": "run the task again."})
    assert isinstance(error, ObjectMissingError) and isinstance(error, LookupError)
    assert error.message.startswith("s3://bucket/key does not exist")
    assert error.hint == "run the task again."


def test_translated_raises_the_mlbuild_error_from_the_aws_one():
    call = aws.AwsCall("AWS Batch", "submit the job")
    with (pytest.raises(BatchError, match="AWS Batch at AWS refused to submit the job") as raised,
          aws.translated(call, error=BatchError)):
        raise client_error("ClientException")
    assert isinstance(raised.value.__cause__, bx.ClientError)
    with pytest.raises(ZeroDivisionError), aws.translated(CALL, error=BatchError):
        1 / 0  # noqa: B018


def test_the_factory_sets_standard_retries_timeouts_and_the_endpoint(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    sent = []
    made = aws.client("s3", endpoint_url="http://127.0.0.1:1", max_attempts=2,
                      connect_timeout=0.5, read_timeout=0.5, on_send=lambda **_: sent.append(1))
    config = made.meta.config
    assert config.retries == {"total_max_attempts": 2, "mode": "standard"}
    assert (config.connect_timeout, config.read_timeout) == (0.5, 0.5)
    assert made.meta.endpoint_url == "http://127.0.0.1:1"
    with pytest.raises(bx.EndpointConnectionError):
        made.list_buckets()
    assert len(sent) == 2  # every attempt is counted


def test_a_client_that_cannot_be_made_is_the_callers_error(monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(ImageError, match="No AWS region is set, which ECR needs") as raised:
        aws.client("ecr", error=ImageError, label="ECR")
    assert "AWS_DEFAULT_REGION" in raised.value.hint
    assert isinstance(raised.value, MlbuildError)


def test_endpoint_name(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert aws.endpoint_name("") == "AWS"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://e")
    assert aws.endpoint_name("") == "http://e"
    assert aws.endpoint_name("http://f") == "http://f"
