"""The long-term signal history: every open/update/close the engine published, one row each."""

from __future__ import annotations

from django.db import models

from signals_app.contracts.signal import CLOSE_REASONS


class Signal(models.Model):
    """One signal message, exactly as published (`payload`), with its fields split out for filters.

    Rows come from the `signals:stream` Redis stream; `stream_id` (the stream entry id) is
    unique, so a batch written twice (a worker restarted between commit and acknowledgement)
    adds nothing the second time.
    """

    stream_id = models.CharField(max_length=32, unique=True, help_text="Redis stream entry id")
    signal_id = models.CharField(max_length=120, db_index=True, help_text="the opportunity's id")
    status = models.CharField(max_length=8, choices=[("open", "open"), ("update", "update"), ("close", "close")])
    asset = models.CharField(max_length=32)
    action = models.CharField(max_length=80)
    buy_exchange = models.CharField(max_length=32)
    sell_exchange = models.CharField(max_length=32)
    buy_symbol = models.CharField(max_length=64)
    sell_symbol = models.CharField(max_length=64)
    buy_price = models.FloatField()
    sell_price = models.FloatField()
    spread_pct = models.FloatField()
    net_spread_pct = models.FloatField()
    size = models.FloatField(null=True, blank=True)
    profit_per_unit = models.FloatField()
    profit_estimate = models.FloatField(null=True, blank=True)
    peak_net_spread_pct = models.FloatField()
    # DESIGN.md "Depth": null when either market had no book (or the signal predates depth).
    depth_size = models.FloatField(null=True, blank=True, help_text="base units the depth walk takes")
    depth_buy_vwap = models.FloatField(null=True, blank=True)
    depth_sell_vwap = models.FloatField(null=True, blank=True)
    depth_profit = models.FloatField(null=True, blank=True, help_text="the walk's profit after fees, common quote")
    depth_net_spread_pct = models.FloatField(null=True, blank=True)
    net_spread_at_target_pct = models.FloatField(null=True, blank=True, help_text="net % at TARGET_NOTIONAL")
    # Null on open and update rows, and on closes written before the engine gave reasons.
    close_reason = models.CharField(
        max_length=16,
        null=True,
        blank=True,
        choices=[(reason, reason) for reason in CLOSE_REASONS],
        help_text="why the opportunity closed (a close only)",
    )
    opened_at_ms = models.BigIntegerField(help_text="Unix ms the opportunity opened")
    duration_ms = models.BigIntegerField()
    timestamp_ms = models.BigIntegerField(help_text="Unix ms of this message (the engine clock)")
    created = models.DateTimeField(help_text="timestamp_ms as a date, for the admin's date hierarchy")
    payload = models.TextField(help_text="the signal JSON exactly as published")

    class Meta:
        ordering = ["-timestamp_ms", "-id"]
        indexes = [
            models.Index(fields=["timestamp_ms", "id"], name="signal_time"),
            models.Index(fields=["asset", "timestamp_ms"], name="signal_asset_time"),
            models.Index(fields=["buy_exchange", "timestamp_ms"], name="signal_buy_time"),
            models.Index(fields=["sell_exchange", "timestamp_ms"], name="signal_sell_time"),
            models.Index(fields=["status", "timestamp_ms"], name="signal_status_time"),
            models.Index(fields=["close_reason", "timestamp_ms"], name="signal_close_reason_time"),
        ]

    def __str__(self) -> str:
        return f"{self.status} {self.signal_id}"
