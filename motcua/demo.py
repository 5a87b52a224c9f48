"""The demonstration values of the local stack: what ``make run`` configures so that a dossier's whole life shows.

Without them a fee has no VietQR (no collection account), the portal's webhook answers 503 (no secret), no bank can
confirm a payment (no callback secret) and the applicant's e-mails and SMS wait for providers that are not there.
``motcua run`` sets each group of variables that the environment does not set already, and prints what it set, with
a one-line ``curl`` that signs a bank's callback. Every value invented here carries the mark ``motcua-demo`` (the
account number "MOTCUADEMO"), and the settings of payments, intake and workflow refuse such a value in production.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

# A collection account no bank holds: letters in the number, so no banking app can send money to it.
COLLECTION_ACCOUNT = {"bin": "970415", "account": "MOTCUADEMO", "name": "TÀI KHOẢN MINH HỌA – KHÔNG CHUYỂN TIỀN"}
BANK_PROVIDER = "demo-bank"
BANK_SECRET = "motcua-demo-bank-callback-secret"
PORTAL_SECRET = "motcua-demo-portal-webhook-secret"
SMS_TOKEN = "motcua-demo-sms-token"
MAIL_FROM = "Bộ phận Một cửa – minh họa <motcua@motcua-demo.localhost>"
PAYMENT_PLACEHOLDER = "MCXXXXXXXXXX"  # the payment id the printed curl asks for
AMOUNT_PLACEHOLDER = 15000


@dataclass(frozen=True)
class Group:
    """Variables that go together: all are demonstration values, or the environment's own."""

    label: str
    variables: Mapping[str, str]
    says: str  # what the banner prints about it


def groups(*, smtp_port: int, sms_url: str) -> list[Group]:
    """The demonstration settings, by what they are for."""
    account = COLLECTION_ACCOUNT
    return [
        Group(
            "collection account",
            {"PAYMENTS_COLLECTION_ACCOUNT": json.dumps(account, ensure_ascii=False)},
            f"bank BIN {account['bin']}, account {account['account']}, \"{account['name']}\": "
            "fees get a VietQR that pays into no bank (PAYMENTS_COLLECTION_ACCOUNT)",
        ),
        Group(
            "bank callbacks",
            {"PAYMENTS_CALLBACK_SECRETS": json.dumps({BANK_PROVIDER: BANK_SECRET})},
            f"provider {BANK_PROVIDER}, HMAC secret {BANK_SECRET} (PAYMENTS_CALLBACK_SECRETS)",
        ),
        Group(
            "portal webhook",
            {"INTAKE_PORTAL_WEBHOOK_SECRET": PORTAL_SECRET},
            f"HMAC secret {PORTAL_SECRET}, headers X-Portal-Timestamp and X-Portal-Signature "
            "(INTAKE_PORTAL_WEBHOOK_SECRET)",
        ),
        Group(
            "mail sink",
            {
                "WORKFLOW_SMTP_HOST": "127.0.0.1",
                "WORKFLOW_SMTP_PORT": str(smtp_port),
                "WORKFLOW_SMTP_TLS": "none",
                "WORKFLOW_SMTP_FROM": MAIL_FROM,
            },
            f"SMTP on 127.0.0.1:{smtp_port}, no TLS; delivers nothing, keeps every e-mail (WORKFLOW_SMTP_*)",
        ),
        Group(
            "SMS sink",
            {"WORKFLOW_SMS_PROVIDER_URL": sms_url, "WORKFLOW_SMS_PROVIDER_TOKEN": SMS_TOKEN},
            f"{sms_url}; delivers nothing, keeps every SMS (WORKFLOW_SMS_PROVIDER_URL)",
        ),
    ]


# The demonstration province's two-tier registry (POST /api/v1/units): the province, two districts that ended with
# the reform of 1 July 2025 and the communes since; the local stack's clerk unit (000.00.12.H56) is one of them.
# Invented codes and names except the province's: demonstration data, not the province's real registry.
DEMO_PROVINCE = "H56"
UNITS: list[dict[str, str]] = [
    {"code": DEMO_PROVINCE, "name": "Tỉnh Khánh Hòa", "tier": "province"},
    {"code": "000.01.00.H56", "name": "Thành phố Nha Trang (đến 30/6/2025)", "tier": "district", "parent": DEMO_PROVINCE, "valid_to": "2025-06-30"},
    {"code": "000.02.00.H56", "name": "Thị xã Ninh Hòa (đến 30/6/2025)", "tier": "district", "parent": DEMO_PROVINCE, "valid_to": "2025-06-30"},
    {"code": "000.00.12.H56", "name": "Phường Nha Trang", "tier": "commune", "parent": DEMO_PROVINCE, "valid_from": "2025-07-01"},
    {"code": "000.00.13.H56", "name": "Phường Bắc Nha Trang", "tier": "commune", "parent": DEMO_PROVINCE, "valid_from": "2025-07-01"},
    {"code": "000.00.14.H56", "name": "Phường Ninh Hòa", "tier": "commune", "parent": DEMO_PROVINCE, "valid_from": "2025-07-01"},
]  # fmt: skip


async def declare_units(intake: httpx.AsyncClient) -> int:
    """Declare the demonstration registry through intake's API (an admin's client); returns the units declared."""
    response = await intake.post("/api/v1/units", json={"units": UNITS})
    response.raise_for_status()
    return int(response.json()["count"])


def chosen(all_groups: list[Group], environment: Mapping[str, str]) -> tuple[list[Group], list[Group]]:
    """(the groups to set, the groups the environment sets itself: any of their variables given)."""
    ours = [g for g in all_groups if not any(name in environment for name in g.variables)]
    theirs = [g for g in all_groups if g not in ours]
    return ours, theirs


def environment_of(groups_: list[Group]) -> dict[str, str]:
    """The variables of the groups."""
    return {name: value for g in groups_ for name, value in g.variables.items()}


def callback_curl(payments_url: str, *, provider: str = BANK_PROVIDER, secret: str = BANK_SECRET) -> str:
    """One line of bash that signs a bank's credit notice for payment ``P`` of amount ``A`` and posts it.

    The signature is shared/webhooks.py's: hex HMAC-SHA256 over ``<timestamp>.<body>``, sent as
    ``X-Provider-Signature: sha256=<hex>`` beside ``X-Provider-Timestamp: <unix seconds>``.
    """
    url = f"{payments_url.rstrip('/')}/api/v1/payments/callbacks/{provider}"
    body = '"{\\"transaction_id\\":\\"FT$T$RANDOM\\",\\"amount\\":$A,\\"currency\\":\\"VND\\",\\"reference\\":\\"$P\\"}"'
    signature = f"$(printf '%s.%s' \"$T\" \"$B\" | openssl dgst -sha256 -hmac {shlex.quote(secret)} -r | cut -d' ' -f1)"
    return (
        f"P={PAYMENT_PLACEHOLDER} A={AMOUNT_PLACEHOLDER} T=$(date +%s); B={body}; "
        f"curl -s -X POST {url} -H 'Content-Type: application/json' -H \"X-Provider-Timestamp: $T\" "
        f"-H \"X-Provider-Signature: sha256={signature}\" -d \"$B\"; echo"
    )


def banner(ours: list[Group], theirs: list[Group], *, payments_url: str, messages_folder: str) -> str:
    """What ``motcua run`` prints about them once the stack is ready."""
    lines = ["demonstration values of this local stack (production refuses every one of them):"]
    lines += [f"  {g.label:<19} {g.says}" for g in ours]
    lines += [f"  {g.label:<19} from your environment ({', '.join(g.variables)})" for g in theirs]
    if any(g.label in ("mail sink", "SMS sink") for g in ours):
        lines.append(f"  {'messages':<19} .venv/bin/motcua messages  (kept in {messages_folder})")
    if any(g.label == "bank callbacks" for g in ours):
        lines.append("a bank confirms a fee (bash; P: the payment's id, on its page or in GET /api/v1/payments; A: its amount):")
        lines.append("  " + callback_curl(payments_url))
    return "\n".join(lines)
