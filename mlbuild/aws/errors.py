"""The error map: every boto3/botocore error becomes an mlbuild error, in one place.

:func:`classify` sorts an exception into a *problem*; :func:`translate` turns it into
the caller's mlbuild error class, with a message that names the service, the action and
the resource, and a hint. Callers refine the result per problem (the S3 store raises
``ObjectMissingError`` for ``not_found`` and names its settings in the hints) but never
look at botocore themselves.

Problems:

=============  ==========================================================================
credentials    no or partial credentials (NoCredentialsError, PartialCredentialsError)
region         no region configured (NoRegionError)
no_bucket      an S3 bucket that does not exist (NoSuchBucket)
not_found      the resource does not exist (404, NoSuchKey, ResourceNotFoundException…)
denied         the credentials may not do it (403, AccessDenied, InvalidAccessKeyId…)
throttled      still throttled after every retry (Throttling, SlowDown…)
unreachable    no answer from the endpoint (EndpointConnectionError, ConnectionError,
               HTTPClientError: refused, timed out, reset)
invalid        a request botocore refuses to send (ParamValidationError)
refused        any other error the service answered with (ClientError)
failed         any other botocore or boto3 error
=============  ==========================================================================
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from mlbuild.errors import MlbuildError

NOT_FOUND = frozenset({
    "404", "NoSuchKey", "NotFound", "NoSuchUpload", "ResourceNotFoundException",
    "RepositoryNotFoundException", "ImageNotFoundException", "NoSuchEntity",
})
DENIED = frozenset({
    "403", "AccessDenied", "AccessDeniedException", "InvalidAccessKeyId",
    "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "ExpiredTokenException",
    "AllAccessDisabled", "InvalidClientTokenId", "UnrecognizedClientException",
    "UnauthorizedOperation", "InvalidSignatureException",
})
NO_BUCKET = frozenset({"NoSuchBucket"})
THROTTLED = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException",
    "RequestLimitExceeded", "RequestThrottled", "RequestThrottledException", "SlowDown",
    "ProvisionedThroughputExceededException", "503",
})

CREDENTIALS_HINT = ("set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run "
                    "where an IAM role applies.")
DEFAULT_HINTS: dict[str, str] = {
    "credentials": CREDENTIALS_HINT,
    "region": "set AWS_DEFAULT_REGION (or region in ~/.aws/config).",
    "no_bucket": "create it, or name an existing bucket.",
    "not_found": "check the name; it may not have been created yet, or was deleted.",
    "denied": "check the credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID) and that their policy "
              "allows it.",
    "throttled": "the account's request rate is exhausted: wait a little and run again "
                 "(finished tasks are kept), or raise the attempts setting.",
    "unreachable": "check that the service is up and that the endpoint (AWS_ENDPOINT_URL) is "
                   "right; once it is, run again: finished tasks are kept.",
    "invalid": "a setting passed on to AWS as it is has a wrong value or type; check the "
               "values named above.",
    "refused": "check the request and that the credentials may do it.",
    "failed": "check the AWS configuration (AWS_PROFILE, AWS_DEFAULT_REGION, "
              "AWS_ENDPOINT_URL) and run again.",
}


@dataclass(frozen=True)
class AwsCall:
    """What was being done when an AWS error happened, for its message."""

    service: str  # as people name it: "S3", "AWS Batch", "CloudWatch Logs", "ECR"
    action: str  # a verb phrase: "read", "submit the job"
    resource: str = ""  # what it was done to: "s3://bucket/key", "job queue 'mlbuild'"
    endpoint: str = "AWS"
    attempts: int | None = None  # attempts made, for "after N attempt(s)"
    bucket: str | None = None  # for S3's no_bucket

    @property
    def what(self) -> str:
        return f"{self.action} {self.resource}".strip()


def classify(exc: BaseException) -> tuple[str, str] | None:
    """``(problem, code)`` for a boto3/botocore error (see the module docstring), else None.

    ``code`` is the service's error code for a ClientError, else the exception's class name.
    """
    from boto3.exceptions import Boto3Error
    from botocore import exceptions as bx

    name = type(exc).__name__
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return "credentials", name
    if isinstance(exc, bx.NoRegionError):
        return "region", name
    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "") or exc.response.get("ResponseMetadata", {})
                   .get("HTTPStatusCode", "?"))
        for problem, codes in (("no_bucket", NO_BUCKET), ("not_found", NOT_FOUND),
                               ("denied", DENIED), ("throttled", THROTTLED)):
            if code in codes:
                return problem, code
        return "refused", code
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectionError | bx.HTTPClientError):
        return "unreachable", name
    if isinstance(exc, bx.ParamValidationError):
        return "invalid", name
    if isinstance(exc, bx.BotoCoreError | Boto3Error):
        return "failed", name
    return None


def _message(problem: str, code: str, exc: BaseException, call: AwsCall) -> str:
    at = f"{call.service} at {call.endpoint}"
    after = f" after {call.attempts} attempt(s) with backoff" if call.attempts else ""
    if problem == "credentials":
        return f"No AWS credentials were found to {call.what} ({call.service})."
    if problem == "region":
        return f"No AWS region is set, which {call.service} needs to {call.what}."
    if problem == "no_bucket":
        bucket = f"The bucket {call.bucket!r}" if call.bucket else "The bucket"
        return f"{bucket} does not exist at {call.endpoint} (while trying to {call.what})."
    if problem == "not_found":
        if call.resource:
            return f"{call.resource} does not exist ({at} answered {code} to {call.action} it)."
        return f"{at} found nothing to {call.action} ({code}): {_detail(exc)}."
    if problem == "denied":
        return f"Access denied ({code}) to {call.what} at {call.endpoint}."
    if problem == "throttled":
        return f"{at} throttled the requests to {call.what} ({code}){after}."
    if problem == "unreachable":
        return (f"Cannot reach {at} to {call.what}: it did not answer{after} "
                f"({_detail(exc)}).")
    if problem == "invalid":
        return f"Cannot {call.what}: {call.service} would refuse the request: {_detail(exc)}."
    if problem == "refused":
        return f"{at} refused to {call.what}: {code}: {_detail(exc)}."
    return f"Cannot {call.what} with {at}: {_detail(exc)}."


def _detail(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        message = response.get("Error", {}).get("Message")
        if message:
            return str(message).rstrip(".")
    return str(exc).rstrip(".") or type(exc).__name__


def translate(exc: BaseException, call: AwsCall, *, error: type[MlbuildError] = MlbuildError,
              errors: Mapping[str, type[MlbuildError]] | None = None,
              hints: Mapping[str, str] | None = None) -> BaseException:
    """The mlbuild error for ``exc``; ``exc`` itself when it is no AWS error.

    ``error`` is the class raised for every problem, except those ``errors`` maps to a
    class of their own; ``hints`` replace the default hint of a problem.
    """
    found = classify(exc)
    if found is None:
        return exc
    problem, code = found
    cls = (errors or {}).get(problem, error)
    hint = (hints or {}).get(problem) or DEFAULT_HINTS[problem]
    return cls(_message(problem, code, exc, call), hint=hint)


@contextlib.contextmanager
def translated(call: AwsCall, *, error: type[MlbuildError] = MlbuildError,
               errors: Mapping[str, type[MlbuildError]] | None = None,
               hints: Mapping[str, str] | None = None) -> Iterator[None]:
    """Run the block; raise any AWS error in it as :func:`translate` makes it."""
    try:
        yield
    except Exception as exc:
        mapped = translate(exc, call, error=error, errors=errors, hints=hints)
        if mapped is exc:
            raise
        raise mapped from exc
