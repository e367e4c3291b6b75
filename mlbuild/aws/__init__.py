"""AWS: the one boundary to boto3 and botocore.

Every AWS client mlbuild uses (S3 for stores, Batch and CloudWatch Logs for jobs, ECR for
registry logins) is made by :func:`client`, with standard retries and the configured
timeouts, and every boto3/botocore error is translated by :func:`translate` into an
mlbuild error that names the service, the action and the resource, with a hint. No other
module of mlbuild imports boto3 or botocore (an import-linter contract keeps it so).
"""


from mlbuild.aws.client import client, client_config, endpoint_name, transfer_config
from mlbuild.aws.errors import AwsCall, classify, translate, translated

__all__ = [
    "AwsCall",
    "classify",
    "client",
    "client_config",
    "endpoint_name",
    "transfer_config",
    "translate",
    "translated",
]
