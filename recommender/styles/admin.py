"""Admin of the style area: clusters (rename), jobs, coherence results, classifier reports, curation."""
from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from catalog.services import item_relabel
from stylesite.exceptions import DomainError

from ..models import (
    CoherenceRating,
    Mislabel,
    NearDuplicate,
    StyleClassifier,
    StyleCluster,
    StyleClustering,
    StyleJob,
)
from . import selectors
from .curation import duplicate_resolve


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


def _summary_html(summary: selectors.CoherenceSummary) -> str:
    if not summary.ratings:
        return "no ratings yet"
    groups = format_html_join(", ", "{}: {} ({})", ((g, v["mean"], v["ratings"]) for g, v in summary.by_group.items()))
    return format_html("<strong>{}</strong> from {} rating(s); by group: {}", summary.mean, summary.ratings, groups)


@admin.register(StyleCluster)
class StyleClusterAdmin(admin.ModelAdmin):
    list_display = ["collection", "index", "name", "named_by_curator", "size", "coherence"]
    list_display_links = ["index"]
    list_editable = ["name"]
    list_filter = ["collection"]
    fields = ["collection", "model", "k", "index", "name", "named_by_curator", "size", "label_mix",
              "coherence_detail"]
    readonly_fields = ["collection", "model", "k", "index", "named_by_curator", "size", "label_mix",
                       "coherence_detail"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # clusters come from a clustering job

    @admin.display(description="Coherence (mean, n)")
    def coherence(self, obj: StyleCluster) -> str:
        summary = selectors.coherence_of(obj)
        return f"{summary.mean:.2f} ({summary.ratings})" if summary.ratings else "—"

    @admin.display(description="Coherence ratings")
    def coherence_detail(self, obj: StyleCluster) -> str:
        control = selectors.coherence_control(obj.collection)
        return format_html("This cluster: {}<br>Control sets of the collection: {}",
                           mark_safe(_summary_html(selectors.coherence_of(obj))),  # noqa: S308 (escaped above)
                           mark_safe(_summary_html(control)))  # noqa: S308


@admin.register(StyleClustering)
class StyleClusteringAdmin(ReadOnlyAdmin):
    list_display = ["collection", "k", "silhouette", "map_method", "items", "seconds", "created"]


@admin.register(StyleJob)
class StyleJobAdmin(ReadOnlyAdmin):
    list_display = ["id", "collection", "kind", "status", "progress", "message", "created", "finished"]
    list_filter = ["kind", "status", "collection"]


@admin.register(CoherenceRating)
class CoherenceRatingAdmin(ReadOnlyAdmin):
    list_display = ["set", "cluster", "control", "user", "group", "score", "created"]
    list_filter = ["set__is_control", "group", "score", "set__collection"]
    raw_id_fields = ["set", "user"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[CoherenceRating]:
        return super().get_queryset(request).select_related("set__cluster", "user")

    @admin.display(description="Cluster")
    def cluster(self, obj: CoherenceRating) -> str:
        return str(obj.set.cluster) if obj.set.cluster else "—"

    @admin.display(description="Control", boolean=True)
    def control(self, obj: CoherenceRating) -> bool:
        return obj.set.is_control


def _report_html(name: str, report: dict) -> str:
    from ml.classifier import Report
    from ml.plots import confusion_svg

    if not report or not report.get("n"):
        return format_html("<p>{}: no labelled items.</p>", name)
    parsed = Report(**report)
    rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
        (m["label"], f"{m['recall']:.3f}", f"{m['precision']:.3f}", f"{m['f1']:.3f}", m["support"])
        for m in parsed.per_class))
    return format_html(
        "<h3>{}: accuracy {}, macro F1 {} ({} items)</h3><table><tr><th>label</th><th>accuracy</th>"
        "<th>precision</th><th>F1</th><th>items</th></tr>{}</table><div>{}</div>",
        name, f"{parsed.accuracy:.3f}", f"{parsed.macro_f1:.3f}", parsed.n, rows,
        mark_safe(confusion_svg(parsed)),  # noqa: S308 (built from escaped labels)
    )


@admin.register(StyleClassifier)
class StyleClassifierAdmin(ReadOnlyAdmin):
    list_display = ["collection", "version", "kind", "model", "test_accuracy", "test_macro_f1", "created"]
    list_filter = ["collection"]
    fields = ["collection", "version", "kind", "model", "fingerprint", "artifact", "candidates", "reports"]
    readonly_fields = fields

    @admin.display(description="Test accuracy")
    def test_accuracy(self, obj: StyleClassifier) -> str:
        return f"{obj.test.get('accuracy', 0):.3f}" if obj.test else "—"

    @admin.display(description="Test macro F1")
    def test_macro_f1(self, obj: StyleClassifier) -> str:
        return f"{obj.test.get('macro_f1', 0):.3f}" if obj.test else "—"

    @admin.display(description="Reports (validation, test)")
    def reports(self, obj: StyleClassifier) -> str:
        return format_html("{}{}", _report_html("Validation", obj.validation), _report_html("Test", obj.test))


def _suggested_label(row: Mislabel) -> str:
    """The classifier's label when it is the confident disagreement, else the neighbours' majority."""
    from django.conf import settings

    if row.label != row.item.label and row.probability >= settings.STYLESITE_MISLABEL_CONFIDENCE:
        return row.label
    return row.neighbour_label


@admin.register(Mislabel)
class MislabelAdmin(admin.ModelAdmin):
    """Items whose label disagrees with the classifier or their neighbours, most confident first."""

    list_display = ["thumb", "item", "current_label", "suggested", "confidence_pct", "predicted", "probability_pct",
                    "neighbour_label", "neighbour_pct", "relabel_button"]
    list_filter = ["item__collection"]
    ordering = ()
    actions = ["relabel_selected"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Mislabel]:
        return selectors.mislabels().prefetch_related("item__images")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return obj is None and super().has_change_permission(request)

    def get_urls(self):
        return [path("<int:pk>/relabel/", self.admin_site.admin_view(require_POST(self.relabel_view)),
                     name="recommender_mislabel_relabel"), *super().get_urls()]

    @admin.display(description="")
    def thumb(self, obj: Mislabel) -> str:
        cover = obj.item.cover
        return format_html('<img src="{}" width="64" height="64" style="object-fit:contain">', cover.thumbnail.url) \
            if cover and cover.thumbnail else ""

    @admin.display(description="Label")
    def current_label(self, obj: Mislabel) -> str:
        return obj.item.label

    @admin.display(description="Suggested")
    def suggested(self, obj: Mislabel) -> str:
        return _suggested_label(obj)

    @admin.display(description="Confidence")
    def confidence_pct(self, obj: Mislabel) -> str:
        return f"{obj.confidence:.0%}"

    @admin.display(description="Classifier says")
    def predicted(self, obj: Mislabel) -> str:
        return obj.label

    @admin.display(description="Classifier's probability")
    def probability_pct(self, obj: Mislabel) -> str:
        return f"{obj.probability:.0%}"

    @admin.display(description="Neighbours' share")
    def neighbour_pct(self, obj: Mislabel) -> str:
        return f"{obj.neighbour_share:.0%}"

    @admin.display(description="")
    def relabel_button(self, obj: Mislabel) -> str:
        url = reverse("admin:recommender_mislabel_relabel", args=[obj.pk])
        # The changelist is one form (with the CSRF token); the button posts it to the relabel view.
        return format_html('<button type="submit" class="button" formaction="{}" formmethod="post">'
                           'Relabel as {}</button>', url, _suggested_label(obj))

    def relabel_view(self, request: HttpRequest, pk: int) -> HttpResponseRedirect:
        if not self.has_change_permission(request):  # admin_view checks staff status only
            raise PermissionDenied
        row = get_object_or_404(Mislabel.objects.select_related("item"), pk=pk)
        self._relabel(request, [row])
        return HttpResponseRedirect(reverse("admin:recommender_mislabel_changelist"))

    @admin.action(description="Relabel selected items with the suggested label", permissions=["change"])
    def relabel_selected(self, request: HttpRequest, queryset: QuerySet[Mislabel]) -> None:
        self._relabel(request, list(queryset.select_related("item")))

    def _relabel(self, request: HttpRequest, rows: list[Mislabel]) -> None:
        for row in rows:
            new_label = _suggested_label(row)
            old = row.item.label
            try:
                item_relabel(row.item, new_label)
            except DomainError as exc:
                self.message_user(request, f"{row.item}: {exc.message}", messages.ERROR)
                continue
            self.message_user(request, f"{row.item}: {old} → {new_label}", messages.SUCCESS)


@admin.register(NearDuplicate)
class NearDuplicateAdmin(admin.ModelAdmin):
    list_display = ["first_thumb", "first", "second_thumb", "second", "similarity", "resolution", "buttons"]
    list_filter = ["resolution", "collection"]
    actions = ["keep_selected", "merge_selected"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[NearDuplicate]:
        return super().get_queryset(request).select_related("first", "second").prefetch_related(
            "first__images", "second__images")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return obj is None and super().has_change_permission(request)

    def get_urls(self):
        return [path("<int:pk>/<str:action>/", self.admin_site.admin_view(require_POST(self.resolve_view)),
                     name="recommender_nearduplicate_resolve"), *super().get_urls()]

    @staticmethod
    def _thumb(item) -> str:
        cover = item.cover
        return format_html('<img src="{}" width="64" height="64" style="object-fit:contain">', cover.thumbnail.url) \
            if cover and cover.thumbnail else ""

    @admin.display(description="")
    def first_thumb(self, obj: NearDuplicate) -> str:
        return self._thumb(obj.first)

    @admin.display(description="")
    def second_thumb(self, obj: NearDuplicate) -> str:
        return self._thumb(obj.second)

    @admin.display(description="")
    def buttons(self, obj: NearDuplicate) -> str:
        if obj.resolution != NearDuplicate.Resolution.OPEN:
            return ""
        return format_html_join(" ", '<button type="submit" class="button" formaction="{}" formmethod="post">'
                                     '{}</button>',
                                ((reverse("admin:recommender_nearduplicate_resolve", args=[obj.pk, a]), text)
                                 for a, text in (("keep", "Keep both"), ("merge", "Merge into first"))))

    def resolve_view(self, request: HttpRequest, pk: int, action: str) -> HttpResponseRedirect:
        if not self.has_change_permission(request):  # admin_view checks staff status only
            raise PermissionDenied
        self._resolve(request, [get_object_or_404(NearDuplicate.objects.select_related("first", "second"), pk=pk)],
                      action)
        return HttpResponseRedirect(reverse("admin:recommender_nearduplicate_changelist"))

    @admin.action(description="Keep both items of the selected pairs", permissions=["change"])
    def keep_selected(self, request: HttpRequest, queryset: QuerySet[NearDuplicate]) -> None:
        self._resolve(request, list(queryset), "keep")

    @admin.action(description="Merge the second item of each selected pair into the first", permissions=["change"])
    def merge_selected(self, request: HttpRequest, queryset: QuerySet[NearDuplicate]) -> None:
        self._resolve(request, list(queryset), "merge")

    def _resolve(self, request: HttpRequest, pairs: list[NearDuplicate], action: str) -> None:
        for pair in pairs:
            try:
                duplicate_resolve(pair, action)
                self.message_user(request, f"{pair}: {action}", messages.SUCCESS)
            except DomainError as exc:
                self.message_user(request, f"pair {pair.pk}: {exc.message}", messages.ERROR)
