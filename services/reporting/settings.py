"""Reporting settings."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from services.reporting.domain import DEFAULT_BANDS
from services.reporting.dvcqg import SyncMapping
from shared.settings import ServiceSettings

# The fields (lĩnh vực) of the procedures seeded from DOMAIN §6. dossier.received.v1 carries the catalog's field, which
# wins; this map (REPORTING_PROCEDURE_FIELDS replaces it) serves events from before it did. Neither: reported under "".
SEED_PROCEDURE_FIELDS: dict[str, str] = {
    **dict.fromkeys(
        ["1.001193", "LT.0001", "1.000894", "1.000656", "LT.0002", "1.004873", "1.004884", "1.004859", "1.001022",
         "1.004837", "LOCAL.HT.011", "2.000635"],
        "Hộ tịch",
    ),
    **dict.fromkeys(["2.000815", "2.000815.E", "2.000884", "2.001035", "LOCAL.CT.017", "LOCAL.CT.018"], "Chứng thực"),
    **dict.fromkeys(["1.004222", "1.004194", "LOCAL.CT.021", "LOCAL.CT.022", "1.010038"], "Cư trú"),
    "LOCAL.KD.024": "Kinh doanh",
    "LOCAL.XD.025": "Xây dựng",
    "LOCAL.BT.026": "Bảo trợ xã hội",
}  # fmt: skip

# Plan targets (DOMAIN §4.4) [I]: each plan sets its own; a report shows whether the rate met it.
DEFAULT_PLAN_TARGETS: dict[str, float] = {
    "sync": 100, "on_time": 98, "early": 70, "late": 2, "online": 50, "postal": 10, "online_payment": 50,
    "electronic_result": 95, "digitization": 95, "reuse": 50, "satisfaction": 90, "online_identified": 100,
}  # fmt: skip


class ReportingSettings(ServiceSettings):
    """Settings of the reporting service (``REPORTING_*`` overrides the shared variables)."""

    service: ClassVar[str] = "reporting"
    port: int = 8005
    # The rule book and the unit registry (intake's facts, kept in this database) are read at most this often; a
    # version published or a unit declared reaches every replica within it.
    law_cache_seconds: float = Field(default=10, gt=0)
    # A running dossier is "near due" (sắp đến hạn) at the end of a period when its deadline falls within this many
    # working days (or office hours) after it [I: DOMAIN §8.2 "e.g. ≤1 WD"].
    near_due_threshold: float = Field(default=1, ge=0)
    near_due_unit: Literal["working_days", "working_hours"] = "working_days"
    procedure_fields: dict[str, str] = Field(default_factory=lambda: dict(SEED_PROCEDURE_FIELDS))
    # The names the public month (công khai) page gives units, as workflow's: {"000.00.12.H56": "UBND phường Bến Nghé"}.
    # A unit without one is shown by its code.
    unit_names: dict[str, str] = Field(default_factory=dict, description='JSON, e.g. {"000.00.12.H56": "UBND PHƯỜNG BẾN NGHÉ"}')
    plan_targets: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_PLAN_TARGETS))
    # How often the per-unit business gauges of /metrics (received, pending, overdue, near due) are recomputed.
    metrics_refresh_seconds: float = Field(default=30, gt=0)
    # Rating bands of the 766 score out of 100: [[floor, name], …] [S: ≥90 Xuất sắc, <50 Yếu; I: 80/70/50].
    index766_bands: list[tuple[float, str]] = Field(default_factory=lambda: [list(b) for b in DEFAULT_BANDS])  # type: ignore[misc]
    # Which score the 766 band shown rests on: "all" (points earned of every indicator's 100; what is not computed here
    # counts 0) or "computable" (points earned of the indicators computed here, rescaled to 100). Both scores are shown.
    index766_band_basis: Literal["all", "computable"] = "all"
    # ---- the DVCQG sync through the provincial LGSP (services/reporting/dvcqg.py, syncs.py; DOMAIN §7) -------------
    # Queue a sync with every status change and processing step (off: nothing is owed, nothing is sent).
    dvcqg_enabled: bool = True
    # Where the LGSP is; unset, syncs are queued and counted (backlog, indicator) but nothing is sent.
    dvcqg_lgsp_url: str | None = None
    dvcqg_auth_endpoint: str = "/auth"
    dvcqg_integration_endpoint: str = "/integration"
    dvcqg_username: str = ""
    dvcqg_password: str = ""
    dvcqg_dstcode: str = ""  # the `dstcode` header: the national portal's code at the LGSP
    dvcqg_madonvi: str = ""  # `madonvi` of every call; empty: the dossier's processing unit (MaDinhDanhDV)
    # error_code values with which the LGSP says the session is invalid: log in again and repeat once (HTTP 401/403 too).
    dvcqg_session_invalid_codes: list[str] = Field(default_factory=list)
    dvcqg_session_ttl_seconds: float = Field(default=0, ge=0)  # renew a session older than this before use (0: when refused)
    dvcqg_timeout_seconds: float = Field(default=30, gt=0)
    # Names and codes the national side sees (services/reporting/dvcqg.py: DEFAULT_MAPPING); a key given replaces it.
    dvcqg_mapping: dict[str, Any] = Field(default_factory=dict)
    # A status sync is on time (766 DOSSIER_SYNC) when the LGSP accepted it within this long after the status change [I].
    dvcqg_on_time_seconds: float = Field(default=300, gt=0)
    dvcqg_run_sender: bool = True  # run the sender in this process (several replicas may: SKIP LOCKED)
    dvcqg_interval_seconds: float = Field(default=1, gt=0)
    dvcqg_batch_size: int = Field(default=50, ge=1)
    dvcqg_concurrency: int = Field(default=8, ge=1)  # syncs in flight at once per process
    dvcqg_lease_seconds: float = Field(default=120, gt=0)  # a claimed sync whose sender died is sent again after this (> 3 × timeout)
    dvcqg_settle_seconds: float = Field(default=1, ge=0)  # wait this long after queuing, for other producers' events
    dvcqg_backoff_initial_seconds: float = Field(default=5, gt=0)
    dvcqg_backoff_max_seconds: float = Field(default=900, gt=0)
    # Refusals (error_code not 0) before a sync is given up; an LGSP that is down spends none (it is waited out).
    dvcqg_max_refusals: int = Field(default=10, ge=1)

    @model_validator(mode="after")
    def _coherent(self) -> ReportingSettings:
        SyncMapping.of(self.dvcqg_mapping)  # an unknown key is refused at start-up
        if self.dvcqg_lease_seconds <= 3 * self.dvcqg_timeout_seconds:  # an attempt: up to a login, a lookup and a push
            raise ValueError("REPORTING_DVCQG_LEASE_SECONDS must exceed three times REPORTING_DVCQG_TIMEOUT_SECONDS")
        return self
