"""Genesys Cloud regions: the domain each one's API and login hosts live under."""

from __future__ import annotations

REGION_DOMAINS: dict[str, str] = {
    "us-east-1": "mypurecloud.com",
    "us-east-2": "use2.us-gov-pure.cloud",
    "us-west-2": "usw2.pure.cloud",
    "ca-central-1": "cac1.pure.cloud",
    "sa-east-1": "sae1.pure.cloud",
    "mx-central-1": "mxc1.pure.cloud",
    "eu-west-1": "mypurecloud.ie",
    "eu-west-2": "euw2.pure.cloud",
    "eu-central-1": "mypurecloud.de",
    "eu-central-2": "euc2.pure.cloud",
    "ap-south-1": "aps1.pure.cloud",
    "ap-northeast-1": "mypurecloud.jp",
    "ap-northeast-2": "apne2.pure.cloud",
    "ap-northeast-3": "apne3.pure.cloud",
    "ap-southeast-1": "apse1.pure.cloud",
    "ap-southeast-2": "mypurecloud.com.au",
    "me-central-1": "mec1.pure.cloud",
}
"""AWS region name to Genesys Cloud domain, as the official SDKs list them."""


def resolve_domain(environment: str) -> str:
    """The Genesys domain for a region domain or an AWS region name (``us_east_1`` works too).

    Raises:
        ValueError: the name is neither; the message lists the valid ones.
    """
    name = environment.strip().lower().removeprefix("https://").removeprefix("api.").rstrip("/")
    if name in REGION_DOMAINS.values():
        return name
    alias = name.replace("_", "-")
    if alias in REGION_DOMAINS:
        return REGION_DOMAINS[alias]
    valid = ", ".join(sorted(REGION_DOMAINS.values()))
    msg = (
        f"unknown Genesys Cloud region {environment!r}; use one of: {valid} (or an AWS region name)"
    )
    raise ValueError(msg)
