"""A fake AWS Parameters and Secrets Lambda Extension: the two GET endpoints a Lambda function reads
Secrets Manager secrets and SSM parameters from, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import uuid
from urllib.parse import unquote

from genesys_enrich.loopback.server import LoopbackServer, Request, Response


class FakeSecretsExtension(LoopbackServer):
    """Answers ``GET /secretsmanager/get?secretId=`` and ``GET
    /systemsmanager/parameters/get?name=&withDecryption=true`` as the extension does, from
    :attr:`secrets` and :attr:`parameters` (ARN to value), for requests bearing ``token`` in
    ``X-Aws-Parameters-Secrets-Token``. Point ``PARAMETERS_SECRETS_EXTENSION_HTTP_PORT`` at
    :attr:`port` and set ``AWS_SESSION_TOKEN`` to ``token``; change a value to rotate it.
    """

    def __init__(self, token: str = "session-token") -> None:  # noqa: S107 - a fake's own
        super().__init__()
        self.token = token
        self.secrets: dict[str, str] = {}
        self.parameters: dict[str, str] = {}

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def reads(self, arn: str) -> int:
        """How many times ``arn`` was asked for."""
        return sum(
            1
            for r in self.requests
            if arn in [unquote(v) for key in ("secretId", "name") for v in r.query.get(key, [])]
        )

    def handle(self, request: Request) -> Response:
        if request.headers.get("x-aws-parameters-secrets-token") != self.token:
            return Response(401, b"Unauthorized: missing or wrong X-Aws-Parameters-Secrets-Token")
        if request.method == "GET" and request.path == "/secretsmanager/get":
            secret_id = request.query.get("secretId", [""])[0]
            if secret_id not in self.secrets:
                return Response(400, b"ResourceNotFoundException: secret not found")
            return Response(
                200,
                {
                    "ARN": secret_id,
                    "Name": secret_id.rsplit(":", 1)[-1],
                    "SecretString": self.secrets[secret_id],
                    "VersionId": str(uuid.uuid4()),
                    "VersionStages": ["AWSCURRENT"],
                },
            )
        if request.method == "GET" and request.path == "/systemsmanager/parameters/get":
            name = request.query.get("name", [""])[0]
            if name not in self.parameters:
                return Response(400, b"ParameterNotFound: parameter not found")
            if request.query.get("withDecryption") != ["true"]:
                return Response(400, b"a SecureString parameter needs withDecryption=true")
            parameter = {
                "ARN": name,
                "Name": name.split(":parameter", 1)[-1],
                "Type": "SecureString",
                "Value": self.parameters[name],
                "Version": 1,
            }
            return Response(200, {"Parameter": parameter, "ResultMetadata": {}})
        return Response(404, b"no such route")
