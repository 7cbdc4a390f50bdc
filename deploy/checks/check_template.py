"""Check deploy/template.yaml offline, and fail on any finding.

    python3 -m uv run --project deploy/checks --locked python deploy/checks/check_template.py

1. cfn-lint on the SAM template as written (SAM's own schema, every condition's combination);
2. the AWS SAM translator turns it into plain CloudFormation, as CloudFormation's transform would
   (it fails on anything SAM cannot translate), and cfn-lint checks that result too: the
   resources SAM generates (the alias, the version) and every reference to them;
3. checkov, a static security check. Each finding is fixed in the template or skipped there, in
   the resource's ``Metadata.checkov.skip`` with the reason.

Errors and warnings fail; cfn-lint's informational notes do not. Nothing here calls AWS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from cfnlint.api import ManualArgs, lint
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
"""Regions where Genesys Cloud runs on AWS, so resource support is checked in each."""
SAMPLE_PARAMETERS = {
    "PartnerEventSourceName": (
        "aws.partner/genesys.com/cloud/32aa07aa-db1b-4987-abd0-9483601ec29d/enrich"
    ),
    "GenesysClientId": "0e5f3c6a-5f0e-4f55-9a8f-1b2c3d4e5f60",
    "GenesysClientSecretArn": (
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:genesys-enrich/client-AbCdEf"
    ),
}
"""Values for the parameters without a default, as a deployment would give them."""
PACKAGED_CODE = "s3://deployment-bucket/genesys-enrich-lambda.zip"
"""What `sam package` / `aws cloudformation package` put in place of the local CodeUri."""


class _NoManagedPolicies:
    """The translator asks for AWS managed policies only for a function's ``Policies``; the
    template gives the function its own role instead."""

    def load(self) -> dict[str, str]:
        return {}


def lint_findings(text: str, label: str) -> list[str]:
    """cfn-lint's errors and warnings for a template's text."""
    matches = lint(text, config=ManualArgs(regions=REGIONS))
    return [
        f"{label}: {match.rule.id} {match.message} (line {match.linenumber})"
        for match in matches
        if match.rule.id[0] in "EW"
    ]


def translate(text: str) -> dict[str, Any]:
    """The template as CloudFormation deploys it, after the SAM transform."""
    template = yaml_parse(text)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = PACKAGED_CODE
    defaults = {
        name: parameter["Default"]
        for name, parameter in template["Parameters"].items()
        if "Default" in parameter
    }
    parameters = {**defaults, **SAMPLE_PARAMETERS, "AWS::Region": "us-east-1"}
    return transform(template, parameters, _NoManagedPolicies())  # type: ignore[arg-type]


def checkov_findings(template: Path) -> tuple[int, str]:
    """checkov's exit status and report: it exits 1 when a check fails that is not skipped."""
    checkov = [sys.executable, "-m", "checkov.main", "--framework", "cloudformation"]
    checkov += ["--compact", "--quiet", "--skip-download", "--file", str(template)]
    scan = subprocess.run(  # noqa: S603 - checkov from this project's environment
        checkov, capture_output=True, text=True, check=False
    )
    return scan.returncode, (scan.stdout + scan.stderr).strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("template", nargs="?", type=Path, default=TEMPLATE)
    parser.add_argument(
        "--translated", type=Path, help="also write the translated CloudFormation (JSON) here"
    )
    args = parser.parse_args()
    os.environ.setdefault("AWS_DEFAULT_REGION", REGIONS[0])  # the translator asks boto3 for one
    text = args.template.read_text(encoding="utf-8")
    problems = lint_findings(text, "cfn-lint, SAM template")
    try:
        translated = translate(text)
    except Exception as error:  # any translator error is a finding to report
        problems.append(f"SAM translator: {error}")
    else:
        problems += lint_findings(json.dumps(translated, indent=1), "cfn-lint, translated template")
        print(f"SAM translator: {len(translated['Resources'])} CloudFormation resources")
        if args.translated is not None:
            args.translated.write_text(json.dumps(translated, indent=2), encoding="utf-8")
    status, report = checkov_findings(args.template)
    if status != 0:
        problems.append(f"checkov:\n{report}")
    else:
        print(f"checkov: {report.splitlines()[-1] if report else 'no findings'}")
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{args.template}: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
