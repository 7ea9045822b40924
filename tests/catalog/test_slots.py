"""Catalogue pages render on their own; recommender's blocks arrive only through the slots it fills."""
from __future__ import annotations

import pytest

from catalog import hooks


@pytest.mark.django_db
def test_item_page_renders_without_any_slot_filled(client, visitor, make_item, monkeypatch):
    item = make_item(label="dress")
    client.force_login(visitor)
    monkeypatch.setattr(hooks, "_templates", {})
    page = client.get(f"/items/{item.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert item.title in html
    assert 'class="vote"' not in html and "Looks like" not in html


@pytest.mark.django_db
def test_recommender_fills_the_item_slots(client, visitor, make_item):
    item = make_item(label="dress")
    client.force_login(visitor)
    html = client.get(f"/items/{item.pk}/").content.decode()
    assert 'class="vote"' in html  # the vote buttons, from recommender's preference templates
    assert hooks.slot_templates("item_below") == ["recommender/styles/_item_style.html",
                                                  "recommender/search/_looks_like.html"]


def test_an_unknown_slot_is_refused():
    with pytest.raises(ValueError, match="unknown slot"):
        hooks.slot_register("sidebar", "x.html")
