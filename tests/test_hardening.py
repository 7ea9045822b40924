"""Regression tests for what outside testing broke (issue 11: F2-F8 and the minor findings)."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from PIL import Image

from tests.photos import image_bytes

SEARCH = "/api/search/image/"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _own_cache_keys(settings):
    """Throttle and lockout counters of one test never reach another (the Redis cache is shared)."""
    default = settings.CACHES["default"]
    settings.CACHES = {**settings.CACHES, "default": {**default, "KEY_PREFIX": f"{default['KEY_PREFIX']}-"
                                                                              f"{uuid.uuid4().hex[:8]}"}}


@pytest.fixture
def item(make_item):
    return make_item(label="dress", gender="W")


@pytest.fixture
def member(django_user_model):
    return django_user_model.objects.create_user("member", password="pw-member-1")


def _png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 1 if mode == "1" else (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


# --- the one integer parser and the one collection lookup ---------------------------------------

def test_parse_int_takes_ascii_digits_and_json_integers_only():
    from stylesite.exceptions import InvalidInput
    from stylesite.params import parse_int

    assert parse_int(" 12 ", name="k") == 12
    assert parse_int(7, name="k") == 7
    assert parse_int("", name="k", default=3) == 3
    for bad in ("²", "٣", "1.5", "-1", "+1", "1e3", True, 2.0, [1], 2**70, "9" * 19):
        with pytest.raises(InvalidInput):
            parse_int(bad, name="k", minimum=0)
    with pytest.raises(InvalidInput, match="k must be a whole number from 1 to 5"):
        parse_int("6", name="k", minimum=1, maximum=5)


@pytest.mark.django_db
def test_collection_by_slug_is_the_collection_none_or_a_clear_error(collection):
    from catalog.selectors import collection_by_slug
    from stylesite.exceptions import InvalidInput, NotFound

    assert collection_by_slug("garments") == collection
    assert collection_by_slug("") is None
    with pytest.raises(NotFound, match="no collection with slug 'nope'"):
        collection_by_slug("nope")
    with pytest.raises(InvalidInput, match="no collection"):
        collection_by_slug("nope", unknown=InvalidInput)
    with pytest.raises(InvalidInput, match="collection .* is required"):
        collection_by_slug(None, required=True)


# --- F3 / F7: NUL bytes -------------------------------------------------------------------------

NUL_GETS = [
    "/api/items/?label=%00", "/api/items/?q=%00", "/api/items/?gender=%00", "/api/items/?collection=%00",
    "/api/items/?split=%00", "/api/items/?category=%00", "/api/items/{item}/similar/?collection=%00",
    "/api/items/{item}/similar/?label=%00", "/api/stats/?collection=%00", "/api/clusters/?collection=%00",
    "/api/classifier/?collection=%00", "/api/classifier/top/?label=a&collection=%00",
    "/api/styles/map/?collection=%00", "/?q=%00", "/?collection=%00", "/stats/?collection=%00",
    "/search/?collection=%00", "/api/items/?%00=1",
]


@pytest.mark.django_db
@pytest.mark.parametrize("url", NUL_GETS)
def test_a_nul_byte_in_a_query_parameter_is_400(api_client, item, url):
    response = api_client.get(url.format(item=item.pk))
    assert response.status_code == 400
    assert b"NUL" in response.content


@pytest.mark.django_db
def test_a_nul_byte_in_the_feed_parameters_is_400(api_client, member):
    api_client.force_authenticate(member)
    assert api_client.get("/api/me/feed/?collection=%00").status_code == 400


@pytest.mark.django_db
def test_a_nul_byte_in_a_staff_json_body_is_400_and_changes_nothing(api_client, staff_user, item, collection):
    from catalog.models import Collection, Item

    api_client.force_authenticate(staff_user)
    created = api_client.post("/api/collections/", {"name": "evil\x00", "slug": "evil"}, format="json")
    assert created.status_code == 400 and "NUL" in created.json()["detail"]
    assert not Collection.objects.filter(slug="evil").exists()
    patched = api_client.patch(f"/api/items/{item.pk}/", {"title": "x\x00y"}, format="json")
    assert patched.status_code == 400
    assert Item.objects.get(pk=item.pk).title == item.title
    key = api_client.patch(f"/api/items/{item.pk}/", {"title\x00": "x"}, format="json")
    assert key.status_code == 400
    nested = api_client.post("/api/me/predict/", {"items": [1], "note": ["\x00"]}, format="json")
    assert nested.status_code == 400


@pytest.mark.django_db
def test_a_nul_byte_in_form_fields_is_400(client, api_client, staff_user, collection):
    api_client.force_authenticate(staff_user)
    urlencoded = "application/x-www-form-urlencoded"
    form = api_client.post("/api/collections/", "name=evil%00&slug=evil", content_type=urlencoded)
    assert form.status_code == 400
    multipart = api_client.post("/api/collections/", {"name": "evil\x00", "slug": "evil"}, format="multipart")
    assert multipart.status_code == 400
    search = api_client.post(SEARCH, {"image": io.BytesIO(image_bytes()), "collection": "\x00"}, format="multipart")
    assert search.status_code == 400 and "NUL" in search.json()["detail"]
    page = client.post("/accounts/login/", "username=a%00&password=b", content_type=urlencoded)
    assert page.status_code == 400


# --- F4: one strict integer parser -------------------------------------------------------------

@pytest.mark.django_db
def test_superscript_and_other_unicode_digits_are_400_not_500(api_client, item, member):
    for k in ("²", "٣", "1²"):
        similar = api_client.get(f"/api/items/{item.pk}/similar/", {"k": k})
        assert similar.status_code == 400 and "k must be a whole number" in similar.json()["detail"]
    search = api_client.post(SEARCH, {"image": io.BytesIO(image_bytes()), "k": "²"}, format="multipart")
    assert search.status_code == 400 and "k must be" in search.json()["detail"]
    assert api_client.get("/api/classifier/top/", {"item": "²"}).status_code == 400
    assert api_client.get("/api/classifier/top/", {"label": "dress", "collection": "garments",
                                                   "limit": "²"}).status_code == 400
    api_client.force_authenticate(member)
    assert api_client.get("/api/me/feed/", {"k": "²"}).status_code == 400
    assert api_client.post("/api/coherence/", {"set": "²", "score": 3}, format="json").status_code == 400
    assert api_client.post("/api/coherence/", {"set": 10**30, "score": 3}, format="json").status_code == 400


@pytest.mark.django_db
def test_rating_page_with_a_unicode_digit_set_is_a_message_not_a_500(client, member, collection):
    client.force_login(member)
    response = client.post(f"/styles/{collection.slug}/rate/", {"set": "²", "score": "4"}, follow=True)
    assert response.status_code == 200 and b"missing its set" in response.content


@pytest.mark.django_db
def test_style_job_numbers_are_parsed_strictly(api_client, staff_user, collection):
    from recommender.models import StyleJob

    api_client.force_authenticate(staff_user)
    for k_min in ("²", 2.5, 1e300, True):
        response = api_client.post("/api/styles/jobs/", {"collection": collection.slug, "kind": "cluster",
                                                         "k_min": k_min}, format="json")
        assert response.status_code == 400, k_min
    assert not StyleJob.objects.exists()


# --- F5 / F6: JSON bodies ----------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("depth", [100, 100_000])
def test_deeply_nested_json_is_400_even_on_the_anonymous_token_route(api_client, depth):
    body = '{"username": ' + "[" * depth + "]" * depth + "}"
    response = api_client.generic("POST", "/api/auth/token/", body, content_type="application/json")
    assert response.status_code == 400
    assert "nested" in response.json()["detail"]


@pytest.mark.django_db
def test_a_json_body_that_is_not_an_object_is_400(api_client, member, staff_user, collection):
    api_client.force_authenticate(member)
    for body in ("[]", "[1, 2]", '"text"', "3", "null"):
        response = api_client.generic("POST", "/api/coherence/", body, content_type="application/json")
        assert response.status_code == 400, body
        assert "must be a JSON object" in response.json()["detail"]
    api_client.force_authenticate(staff_user)
    jobs = api_client.generic("POST", "/api/styles/jobs/", "[]", content_type="application/json")
    assert jobs.status_code == 400


# --- F8: admin actions check model permissions -------------------------------------------------

@pytest.fixture
def bare_staff(django_user_model):
    return django_user_model.objects.create_user("bare", password="pw-bare-1", is_staff=True)


@pytest.fixture
def mislabel(item):
    from recommender.embeddings import embedding_model_ensure
    from recommender.models import Mislabel, StyleClassifier

    classifier = StyleClassifier.objects.create(collection=item.collection, model=embedding_model_ensure(
        "efficientnet-lite0"), version=1, kind="logistic", fingerprint="x", artifact="none")
    return Mislabel.objects.create(item=item, classifier=classifier, label="skirt", probability=0.99,
                                   neighbour_label="skirt", neighbour_share=1.0)


@pytest.mark.django_db
def test_relabel_needs_the_change_permission_not_just_staff(client, bare_staff, mislabel):
    from catalog.models import Item

    client.force_login(bare_staff)
    url = f"/admin/recommender/mislabel/{mislabel.pk}/relabel/"
    assert client.post(url).status_code == 403
    assert Item.objects.get(pk=mislabel.item_id).label == "dress"
    action = client.post("/admin/recommender/mislabel/", {"action": "relabel_selected",
                                                          "_selected_action": [mislabel.pk]})
    assert action.status_code == 403
    assert Item.objects.get(pk=mislabel.item_id).label == "dress"

    bare_staff.user_permissions.add(Permission.objects.get(codename="change_mislabel"))
    client.force_login(bare_staff)
    assert client.post(url).status_code == 302
    assert Item.objects.get(pk=mislabel.item_id).label == "skirt"


@pytest.mark.django_db
def test_keep_and_merge_need_the_change_permission_not_just_staff(client, bare_staff, make_item, collection):
    from catalog.models import Item
    from recommender.models import NearDuplicate

    first, second = make_item(), make_item()
    pair = NearDuplicate.objects.create(collection=collection, first=first, second=second, similarity=0.99)
    client.force_login(bare_staff)
    for action in ("keep", "merge"):
        assert client.post(f"/admin/recommender/nearduplicate/{pair.pk}/{action}/").status_code == 403
    pair.refresh_from_db()
    assert pair.resolution == NearDuplicate.Resolution.OPEN and Item.objects.filter(pk=second.pk).exists()

    bare_staff.user_permissions.add(Permission.objects.get(codename="change_nearduplicate"))
    client.force_login(bare_staff)
    assert client.post(f"/admin/recommender/nearduplicate/{pair.pk}/keep/").status_code == 302
    pair.refresh_from_db()
    assert pair.resolution == NearDuplicate.Resolution.KEPT


# --- F2: the photo-search throttle -------------------------------------------------------------

def _search(api_client, **extra):
    return api_client.post(SEARCH, {"image": io.BytesIO(b"nope")}, format="multipart", **extra).status_code


@pytest.mark.django_db
def test_a_spoofed_forwarded_for_header_does_not_reset_the_limit(api_client, collection, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"photo_search": "2/min", "photo_search_ip": "100/min"}}
    codes = [_search(api_client, HTTP_X_FORWARDED_FOR=f"10.9.0.{n}") for n in range(3)]
    assert codes == [400, 400, 429]


@pytest.mark.django_db
def test_new_accounts_from_one_address_share_its_limit(api_client, collection, settings, django_user_model):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"photo_search": "100/min", "photo_search_ip": "2/min"}}
    codes = []
    for n in range(3):
        api_client.force_authenticate(django_user_model.objects.create_user(f"fresh{n}", password="pw-fresh-1"))
        codes.append(_search(api_client))
    assert codes == [400, 400, 429]
    assert _search(api_client, REMOTE_ADDR="10.7.7.7") == 400  # another address has its own allowance


@pytest.mark.django_db
def test_forwarded_for_is_trusted_only_as_far_as_num_proxies(api_client, collection, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1,
                               "DEFAULT_THROTTLE_RATES": {"photo_search": "1/min", "photo_search_ip": "1/min"}}
    # Behind one proxy the last X-Forwarded-For entry (the one the proxy appended) is the client.
    assert _search(api_client, HTTP_X_FORWARDED_FOR="1.1.1.1, 10.0.0.1") == 400
    assert _search(api_client, HTTP_X_FORWARDED_FOR="2.2.2.2, 10.0.0.1") == 429
    assert _search(api_client, HTTP_X_FORWARDED_FOR="1.1.1.1, 10.0.0.2") == 400


# --- minor findings ----------------------------------------------------------------------------

@pytest.mark.django_db
def test_all_digit_passwords_are_refused_at_sign_up(client, django_user_model):
    response = client.post("/accounts/signup/", {"username": "digits", "password1": "8473629150",
                                                 "password2": "8473629150"})
    assert response.status_code == 200 and b"entirely numeric" in response.content
    assert not django_user_model.objects.filter(username="digits").exists()


@pytest.mark.django_db
def test_the_token_route_locks_a_username_after_repeated_failures(api_client, member, settings):
    settings.STYLESITE_LOGIN_FAILURES_PER_USER = 10
    for n in range(15):  # from many addresses: the username itself is locked
        wrong = api_client.post("/api/auth/token/", {"username": "member", "password": "nope"},
                                REMOTE_ADDR=f"10.3.0.{n}")
        assert wrong.status_code == 400
    right = api_client.post("/api/auth/token/", {"username": "member", "password": "pw-member-1"})
    assert right.status_code == 400 and "token" not in right.json()


@pytest.mark.django_db
def test_the_login_page_locks_an_address_after_repeated_failures(client, member, django_user_model, settings):
    settings.STYLESITE_LOGIN_FAILURES_PER_IP = 15
    other = django_user_model.objects.create_user("other", password="pw-other-1")
    for n in range(15):  # a different username each time: the address is locked
        assert client.post("/accounts/login/", {"username": f"guess{n}", "password": "x"}).status_code == 200
    right = client.post("/accounts/login/", {"username": other.username, "password": "pw-other-1"})
    assert right.status_code == 200 and "_auth_user_id" not in client.session
    elsewhere = client.post("/accounts/login/", {"username": other.username, "password": "pw-other-1"},
                            REMOTE_ADDR="10.4.4.4")
    assert elsewhere.status_code == 302


@pytest.mark.django_db
def test_pages_carry_a_content_security_policy_and_no_inline_script(client, member, collection, item):
    client.force_login(member)
    for url in ("/", "/stats/", "/search/", "/for-you/", "/styles/", f"/styles/{collection.slug}/",
                f"/items/{item.pk}/", "/api/docs/"):
        response = client.get(url)
        assert response.status_code == 200, url
        policy = response["Content-Security-Policy"]
        assert "script-src 'self';" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        html = response.content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
        assert not re.search(r"\son[a-z]+=", html), url


def test_production_settings_do_not_serve_media():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "stylesite.settings.production",
           "DJANGO_SECRET_KEY": "x" * 50, "DJANGO_ALLOWED_HOSTS": "example.org"}
    code = ("import django; django.setup(); from django.urls import resolve, Resolver404\n"
            "try:\n    resolve('/media/items/a.jpg'); print('served')\n"
            "except Resolver404:\n    print('not served')")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "not served"


@pytest.mark.django_db
def test_style_jobs_are_visible_to_staff_only(api_client, member, staff_user, collection):
    from recommender.models import StyleJob

    job = StyleJob.objects.create(collection=collection, kind="cluster", params={})
    url = f"/api/styles/jobs/{job.pk}/"
    assert api_client.get(url).status_code == 401
    api_client.force_authenticate(member)
    assert api_client.get(url).status_code == 403
    api_client.force_authenticate(staff_user)
    assert api_client.get(url).status_code == 200


@pytest.mark.django_db
def test_photo_search_refuses_a_tiny_one_bit_png_that_declares_40_megapixels(api_client, collection):
    data = _png((6000, 6600), mode="1")
    assert len(data) < 20_000
    response = api_client.post(SEARCH, {"image": io.BytesIO(data)}, format="multipart")
    assert response.status_code == 400 and "MP limit" in response.json()["detail"]


@pytest.mark.django_db
def test_photo_searches_beyond_the_concurrency_limit_get_503_with_retry_after(api_client, collection, settings):
    from stylesite.limits import concurrency_slot

    settings.STYLESITE_SEARCH_MAX_CONCURRENT = 1
    with concurrency_slot("photo-search", limit=1, lease_seconds=60):
        busy = api_client.post(SEARCH, {"image": io.BytesIO(image_bytes())}, format="multipart")
    assert busy.status_code == 503 and busy["Retry-After"] == "1"
    again = api_client.post(SEARCH, {"image": io.BytesIO(b"nope")}, format="multipart")
    assert again.status_code == 400  # the slot was released


# --- one way per thing: the schema declares what is returned -----------------------------------

@pytest.mark.django_db
def test_the_schema_declares_every_field_the_api_returns(api_client):
    schemas = api_client.get("/api/schema/?format=json").json()["components"]["schemas"]
    assert "looks_like" in schemas["Query"]["properties"]
    assert {"cluster_id", "name", "cluster", "control"} <= set(schemas["Coherence"]["properties"])
    search = api_client.get("/api/schema/?format=json").json()["paths"]["/api/search/image/"]["post"]
    assert "503" in search["responses"]



@pytest.mark.django_db
def test_the_map_page_shows_jobs_and_polls_their_api_for_staff_only(client, member, staff_user, collection):
    from recommender.models import StyleJob

    StyleJob.objects.create(collection=collection, kind="cluster", params={}, status=StyleJob.Status.FAILED,
                            error="Traceback: secret internals")
    client.force_login(member)
    assert b"secret internals" not in client.get(f"/styles/{collection.slug}/").content
    client.force_login(staff_user)
    assert b"secret internals" in client.get(f"/styles/{collection.slug}/").content
