"""`evaluate_retrieval`: metrics on known vectors, the printed table and the saved report.

The metrics themselves are tested against hand-worked values in tests/ml/test_metrics.py.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from recommender.embeddings import active_model_switch
from recommender.models import RetrievalReport
from tests.factories import VECTOR_DIM, vector_model, vector_put


@pytest.mark.django_db
def test_command_prints_and_saves_precision_recall_and_map(collection, make_item, admin_client):
    model = vector_model()
    active_model_switch(collection, model)
    axis = np.eye(VECTOR_DIM, dtype=np.float32)
    for i in range(3):
        vector_put(model, make_item(label="a", split="train").images.get(), axis[0] + 0.1 * i * axis[2])
        vector_put(model, make_item(label="b", split="train").images.get(), axis[1] + 0.1 * i * axis[2])
    # One query finds its own label everywhere, the other (a "b" that looks like an "a") nowhere.
    vector_put(model, make_item(label="a", split="validation").images.get(), axis[0])
    vector_put(model, make_item(label="b", split="test").images.get(), axis[0] + 0.05 * axis[1])
    out = io.StringIO()

    call_command("evaluate_retrieval", "--collection", collection.slug, "--k", "1,3", stdout=out)

    report = RetrievalReport.objects.get()
    row = report.rows[0]
    assert (row["model"], row["queries"], row["gallery"]) == ("test-vectors", 2, 6)
    assert row["metrics"] == {"precision@1": 0.5, "recall@1": pytest.approx(1 / 6, abs=1e-4), "map@1": 0.5,
                              "precision@3": 0.5, "recall@3": 0.5, "map@3": 0.5}
    assert report.k_values == [1, 3] and report.background_removed is False
    assert report.query_splits == "validation,test" and report.gallery_split == "train"
    printed = out.getvalue()
    assert report.table in printed and "mAP@3" in printed and "test-vectors" in printed
    page = admin_client.get(f"/admin/recommender/retrievalreport/{report.pk}/change/").content.decode()
    assert "<th>map@3</th>" in page and "test-vectors" in page
    # The chart: one bar per k for the one model, each labelled with its precision.
    start = page.index('aria-label="Same-label precision')
    chart = page[start:page.index("</svg>", start)]
    assert chart.count("<rect") == 2 + 2  # two legend swatches (P@1, P@3) and two bars
    assert "test-vectors · P@1: 0.500" in chart and "test-vectors · P@3: 0.500" in chart


@pytest.mark.django_db
def test_command_explains_missing_vectors_and_bad_arguments(collection, make_item):
    make_item(split="train")
    with pytest.raises(CommandError, match="reembed --collection garments"):
        call_command("evaluate_retrieval", "--collection", "garments", "--model", "resnet18-untrained")
    with pytest.raises(CommandError, match="no collection"):
        call_command("evaluate_retrieval", "--collection", "nope")
    with pytest.raises(CommandError, match="--k"):
        call_command("evaluate_retrieval", "--collection", "garments", "--k", "1,x")
    with pytest.raises(CommandError, match="unknown embedding model 'no-such-net'"):
        call_command("evaluate_retrieval", "--collection", "garments", "--model", "no-such-net")
