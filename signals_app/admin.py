"""The Django admin: the signal history, read-only.

Rows are the engine's published record, written by the Celery persistence task; nobody
adds, edits or deletes them by hand (retention is the periodic prune task's job). The
admin can only look: list, filter, search and open a signal.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from signals_app.models import Signal


@admin.register(Signal)
class SignalAdmin(admin.ModelAdmin):
    list_display = (
        "created",
        "status",
        "close_reason",
        "asset",
        "action",
        "buy_exchange",
        "sell_exchange",
        "net_spread_pct",
        "size",
        "profit_estimate",
        "depth_profit",
        "net_spread_at_target_pct",
        "duration",
    )
    list_filter = ("asset", "buy_exchange", "sell_exchange", "status", "close_reason", "created")
    search_fields = ("signal_id", "=asset")  # an id or part of one; an asset exactly (BTC, not BTCDOWN)
    date_hierarchy = "created"
    ordering = ("-timestamp_ms", "-id")
    list_per_page = 100
    # The table grows by every open/update/close: skip the unfiltered COUNT(*) on each page.
    show_full_result_count = False
    fieldsets = (
        (None, {"fields": ("signal_id", "status", "close_reason", "action", "asset", "created", "timestamp_ms")}),
        (
            "Markets",
            {"fields": ("buy_exchange", "buy_symbol", "buy_price", "sell_exchange", "sell_symbol", "sell_price")},
        ),
        (
            "Figures",
            {
                "fields": (
                    "spread_pct",
                    "net_spread_pct",
                    "peak_net_spread_pct",
                    "size",
                    "profit_per_unit",
                    "profit_estimate",
                    "opened_at_ms",
                    "duration_ms",
                )
            },
        ),
        (
            "Depth (what the books could fill; empty without a book on both markets)",
            {
                "fields": (
                    "depth_size",
                    "depth_buy_vwap",
                    "depth_sell_vwap",
                    "depth_profit",
                    "depth_net_spread_pct",
                    "net_spread_at_target_pct",
                )
            },
        ),
        ("As published", {"fields": ("payload", "stream_id")}),
    )

    @admin.display(description="duration", ordering="duration_ms")  # type: ignore[untyped-decorator]
    def duration(self, signal: Signal) -> str:
        return format_duration(signal.duration_ms)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Signal | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Signal | None = None) -> bool:
        return False


def format_duration(duration_ms: int) -> str:
    """1234 -> '1.234 s', 65_000 -> '1 min 05 s', 3_725_000 -> '1 h 02 min 05 s'."""
    if duration_ms < 60_000:
        return f"{duration_ms / 1000:.3f} s"
    seconds = duration_ms // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min {seconds:02d} s"
    return f"{minutes} min {seconds:02d} s"
