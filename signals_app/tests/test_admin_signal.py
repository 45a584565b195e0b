"""The admin's Signal pages: list, filters, search, date hierarchy and detail, all read-only."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from signals_app.admin import format_duration
from signals_app.tests.api_fixtures import make_signal, store_signal

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/signals_app/signal/"
T0 = 1_705_670_000_000  # 2024-01-19 13:13:20 UTC
DAY = 86_400_000


@pytest.fixture
def rows():
    return [
        store_signal(make_signal(T0, "BTC", "binance", "coinbase", "open")),
        store_signal(
            {**make_signal(T0 + 65_000, "BTC", "binance", "coinbase", "close", opened_at=T0), "close_reason": "stale"}
        ),
        store_signal(make_signal(T0 + 1000, "ETH", "kraken", "okx", "open")),
        store_signal(make_signal(T0 + 40 * DAY, "SOL", "okx", "binance", "update", opened_at=T0 + 40 * DAY - 1500)),
    ]


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("admin", "admin@example.com", None)  # no hashing: force_login
    client.force_login(user)
    return client


def listed(client, **params) -> set[str]:
    response = client.get(CHANGELIST, params)
    assert response.status_code == 200
    return {f"{row.signal_id}/{row.status}" for row in response.context["cl"].result_list}


def test_changelist_renders_the_columns(admin_client, rows):
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    html = response.content.decode()
    for header in ("Created", "Status", "Asset", "Action", "Buy exchange", "Sell exchange", "Net spread pct"):
        assert header in html
    for header in ("Size", "Profit estimate", "Duration", "Close reason"):
        assert header in html
    assert ">stale</td>" in html  # the close's reason in its row
    assert "BUY_KRAKEN_SELL_OKX" in html
    assert "1 min 05 s" in html  # the close's duration, readable
    assert len(response.context["cl"].result_list) == 4


def test_detail_page_renders_read_only(admin_client, rows):
    row = rows[1]
    response = admin_client.get(f"{CHANGELIST}{row.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert row.signal_id in html
    assert "As published" in html
    assert 'name="_save"' not in html  # no form to submit
    assert admin_client.post(f"{CHANGELIST}{row.pk}/change/", {"status": "open"}).status_code == 403


def test_add_change_and_delete_are_forbidden(admin_client, rows):
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403
    assert admin_client.get(f"{CHANGELIST}{rows[0].pk}/delete/").status_code == 403
    response = admin_client.get(CHANGELIST)
    assert "delete_selected" not in response.content.decode()
    assert not response.context["has_add_permission"]


def test_filters(admin_client, rows):
    assert listed(admin_client, asset="BTC") == {
        f"BTC:binance:coinbase:{T0}/open",
        f"BTC:binance:coinbase:{T0}/close",
    }
    assert listed(admin_client, buy_exchange="okx") == {f"SOL:okx:binance:{T0 + 40 * DAY - 1500}/update"}
    assert listed(admin_client, sell_exchange="okx") == {f"ETH:kraken:okx:{T0 + 1000}/open"}
    assert listed(admin_client, status__exact="close") == {f"BTC:binance:coinbase:{T0}/close"}
    assert len(listed(admin_client, asset="BTC", status__exact="open")) == 1
    assert listed(admin_client, close_reason__exact="stale") == {f"BTC:binance:coinbase:{T0}/close"}
    assert listed(admin_client, close_reason__exact="feed_down") == set()
    assert len(listed(admin_client, close_reason__isnull="True")) == 3  # opens, updates, closes from before


def test_the_filter_sidebar_offers_each_filter(admin_client, rows):
    html = admin_client.get(CHANGELIST).content.decode()
    for title in ("By asset", "By buy exchange", "By sell exchange", "By status", "By close reason", "By created"):
        assert title in html


def test_created_date_filter_and_hierarchy(admin_client, rows):
    assert len(listed(admin_client, created__year="2024", created__month="1")) == 3
    assert len(listed(admin_client, created__year="2024", created__month="2")) == 1
    assert len(listed(admin_client, created__year="2024", created__month="1", created__day="19")) == 3
    since = "2024-02-01 00:00:00+00:00"
    assert listed(admin_client, created__gte=since) == {f"SOL:okx:binance:{T0 + 40 * DAY - 1500}/update"}
    html = admin_client.get(CHANGELIST).content.decode()
    assert "created__year=2024" in html  # the date hierarchy's links


def test_search_by_signal_id_and_asset(admin_client, rows):
    assert listed(admin_client, q=f"ETH:kraken:okx:{T0 + 1000}") == {f"ETH:kraken:okx:{T0 + 1000}/open"}
    assert listed(admin_client, q="kraken:okx") == {f"ETH:kraken:okx:{T0 + 1000}/open"}
    assert listed(admin_client, q="sol") == {f"SOL:okx:binance:{T0 + 40 * DAY - 1500}/update"}
    assert listed(admin_client, q="nothing-like-this") == set()


def test_staff_with_view_permission_only_can_look(client, django_user_model, rows):
    user = django_user_model.objects.create_user("viewer", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_signal"))
    client.force_login(user)
    assert client.get(CHANGELIST).status_code == 200
    assert client.get(f"{CHANGELIST}{rows[0].pk}/change/").status_code == 200
    assert client.get(f"{CHANGELIST}add/").status_code == 403


def test_anonymous_is_sent_to_login(client, rows):
    response = client.get(CHANGELIST)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.parametrize(
    ("duration_ms", "text"),
    [(0, "0.000 s"), (1234, "1.234 s"), (59_999, "59.999 s"), (65_000, "1 min 05 s"), (3_725_000, "1 h 02 min 05 s")],
)
def test_format_duration(duration_ms, text):
    assert format_duration(duration_ms) == text
