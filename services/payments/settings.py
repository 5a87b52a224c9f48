"""Payments settings."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field, model_validator

from shared.settings import PLACEHOLDER_SECRETS, ServiceSettings, is_demonstration


class CollectionAccount(BaseModel):
    """A unit's collection account (tài khoản chuyên thu) at a NAPAS member bank."""

    bin: str = Field(pattern=r"^\d{6}$", description="the bank's NAPAS BIN, e.g. 970415 VietinBank")
    account: str = Field(pattern=r"^[0-9A-Za-z]{1,19}$")
    card: bool = Field(default=False, description="the number is a card number (QRIBFTTC), not an account")
    name: str | None = None


# The payment page of a request (services/payments/pages.py serves it).
PAGE_PATH = "/nop-phi/{payment_id}"


class PaymentsSettings(ServiceSettings):
    """Settings of the payments service (``PAYMENTS_*`` overrides the shared variables)."""

    service: ClassVar[str] = "payments"
    port: int = 8004
    # Where fees are paid: per unit, else the default; JSON in the environment, e.g.
    # PAYMENTS_UNIT_COLLECTION_ACCOUNTS='{"000.00.12.H56": {"bin": "970415", "account": "113366668888"}}'.
    collection_account: CollectionAccount | None = None
    unit_collection_accounts: dict[str, CollectionAccount] = {}
    # Signed callbacks: one shared secret per provider name (the {provider} of the callback URL).
    callback_secrets: dict[str, str] = {}
    callback_max_age_seconds: int = 300
    # A pending request expires after this long; the sweep marks it and tells everyone.
    payment_ttl_seconds: float = 7 * 24 * 3600
    run_sweep: bool = True
    sweep_interval_seconds: float = 30.0
    sweep_batch_size: int = Field(default=200, ge=1)
    # Receipts (biên lai thu phí, lệ phí): numbered per unit and calendar year.
    receipt_number_format: str = "BL{yy}-{sequence:07d}"
    unit_names: dict[str, str] = {}
    # The dossier's status page (intake's), printed on receipts and linked from the payment page.
    dossier_lookup_url: str = "http://127.0.0.1:8001/tra-cuu/ho-so/{code}"
    # This service's public address: the payment page of each request (``payment_page_url``) is under it.
    public_base_url: str = "http://127.0.0.1:8004"

    @model_validator(mode="after")
    def _checked(self) -> PaymentsSettings:
        if self.environment == "production":
            for provider, secret in self.callback_secrets.items():
                if secret.strip().lower() in PLACEHOLDER_SECRETS or len(secret) < 16:
                    raise ValueError(f"CALLBACK_SECRETS[{provider!r}] holds a placeholder or is shorter than 16 characters")
                if is_demonstration(secret):
                    raise ValueError(f"CALLBACK_SECRETS[{provider!r}] is the local stack's demonstration secret")
            accounts = {"COLLECTION_ACCOUNT": self.collection_account} | {
                f"UNIT_COLLECTION_ACCOUNTS[{unit!r}]": account for unit, account in self.unit_collection_accounts.items()
            }
            for name, account in accounts.items():
                if account is not None and (is_demonstration(account.account) or is_demonstration(account.name)):
                    raise ValueError(f"{name} is the local stack's demonstration account: fees would be paid into no bank")
        try:
            self.receipt_number_format.format(unit="U", year=2025, yy=25, sequence=1)
            self.dossier_lookup_url.format(code="X")
        except (KeyError, ValueError, IndexError) as exc:
            raise ValueError(f"receipt or lookup format is not usable: {exc}") from exc
        return self

    def account_for(self, unit: str) -> CollectionAccount | None:
        """The collection account fees of a unit are paid to."""
        return self.unit_collection_accounts.get(unit, self.collection_account)

    def unit_of_account(self, account: str | None) -> str | None:
        """The unit whose collection account this is (to route a transfer that matched nothing)."""
        if not account:
            return None
        owners = [unit for unit, acc in self.unit_collection_accounts.items() if acc.account == account]
        return owners[0] if len(owners) == 1 else None

    def payment_page_url(self, payment_id: str) -> str:
        """The public page where a request is paid (its VietQR) and later shown paid."""
        return f"{self.public_base_url.rstrip('/')}{PAGE_PATH.format(payment_id=payment_id)}"

    def account_name(self, unit: str, bank_bin: str | None, account: str | None) -> str | None:
        """The holder's name of the account a request pays into, when the settings still name that account."""
        configured = self.account_for(unit)
        if configured is None or (configured.bin, configured.account) != (bank_bin, account):
            return None
        return configured.name
