from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from stylesite.exceptions import InvalidInput

from .lifecycle import image_mark_pending
from .models import Collection, ImportJob, ImportRow, Item, ItemImage
from .selectors import image_progress
from .services import import_files_check, import_job_create


def _thumb(image: ItemImage | None, size: int = 64) -> str:
    if not image or not image.thumbnail:
        return "–"
    return format_html('<img src="{}" style="height:{}px;width:{}px;object-fit:contain;background:#fff">',
                       image.thumbnail.url, size, size)


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "kind", "remove_background", "embedding_model", "progress"]
    list_filter = ["kind", "remove_background"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def get_readonly_fields(self, request: HttpRequest, obj: Collection | None = None):
        # The active model changes only through `reembed --activate`, after a full backfill.
        return ["embedding_model", "progress"] if obj else ["progress"]

    @admin.display(description="Images ready / total")
    def progress(self, obj: Collection) -> str:
        p = image_progress(obj)
        return (f"{p['ready']} / {p['total']} ready · {p['pending'] + p['processing']} queued · "
                f"{p['failed']} failed · {p['suspect']} suspect")


class ItemImageInline(admin.TabularInline):
    model = ItemImage
    extra = 0
    fields = ["preview", "status", "error", "width", "height", "suspect", "foreground_share"]
    readonly_fields = fields
    show_change_link = True
    can_delete = True

    @admin.display(description="Image")
    def preview(self, obj: ItemImage) -> str:
        return _thumb(obj, 96)


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["thumb", "title", "collection", "label", "gender", "split", "created"]
    list_filter = ["collection", "split", "gender", "label"]
    search_fields = ["title", "label", "source_name"]
    list_select_related = ["collection"]
    inlines = [ItemImageInline]
    list_per_page = 50

    def get_queryset(self, request: HttpRequest) -> QuerySet[Item]:
        return super().get_queryset(request).prefetch_related("images")

    @admin.display(description="")
    def thumb(self, obj: Item) -> str:
        return _thumb(obj.cover)


@admin.register(ItemImage)
class ItemImageAdmin(admin.ModelAdmin):
    list_display = ["thumb", "item", "collection", "status", "suspect", "foreground_share", "width", "height"]
    list_filter = ["status", "suspect", "collection"]
    search_fields = ["item__title", "sha256"]
    list_select_related = ["item", "collection"]
    readonly_fields = ["side_by_side", "sha256", "width", "height", "status", "status_changed", "error",
                       "attempts", "foreground_share", "cutter", "created"]
    fields = ["side_by_side", "item", "suspect", "status", "error", "status_changed", "attempts",
              "foreground_share", "cutter", "width", "height", "sha256", "position", "created"]
    raw_id_fields = ["item"]
    actions = ["reprocess"]

    @admin.display(description="")
    def thumb(self, obj: ItemImage) -> str:
        return _thumb(obj)

    @admin.display(description="Original · mask · cut-out")
    def side_by_side(self, obj: ItemImage) -> str:
        cells = [(label, f.url) for label, f in (("original", obj.original), ("mask", obj.mask),
                                                   ("cut-out", obj.cutout)) if f]
        return format_html(
            "<div style='display:flex;gap:12px;flex-wrap:wrap'>{}</div>",
            format_html_join(
                "", "<figure style='margin:0'><img src='{}' style='height:240px;background:#ccc'>"
                "<figcaption>{}</figcaption></figure>", ((url, label) for label, url in cells),
            ),
        )

    @admin.action(description="Re-process selected images")
    def reprocess(self, request: HttpRequest, queryset: QuerySet[ItemImage]) -> None:
        count = image_mark_pending(ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} image(s) queued for processing.", messages.SUCCESS)


class ImportJobForm(forms.ModelForm):
    """Upload a CSV (the ``csv`` layout) and a zip of its images; checked before anything is stored."""

    class Meta:
        model = ImportJob
        fields = ["collection", "csv_file", "zip_file"]
        labels = {"csv_file": "CSV", "zip_file": "Zip of images"}
        help_texts = {
            "csv_file": "Columns image and label (optional: title, category, gender, period, split, external_url, "
                        "price); image is a path inside the zip.",
            "zip_file": "The images the CSV names.",
        }

    def clean(self) -> dict:
        data = super().clean()
        if data.get("csv_file") and data.get("zip_file"):
            try:
                import_files_check(data["csv_file"], data["zip_file"])
            except InvalidInput as exc:
                raise forms.ValidationError(exc.message) from exc
        return data


# The job page lists this many rejected rows; the CSV report has them all.
REJECTIONS_SHOWN = 20


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    """Bulk imports: the add form starts a job (run by Celery); a job's page shows its progress and report."""

    form = ImportJobForm
    list_display = ["__str__", "status", "progress", "created", "created_by"]
    list_filter = ["status", "collection"]
    list_select_related = ["collection", "created_by"]
    readonly_fields = ["collection", "status", "progress", "error", "report", "rejections", "created_by", "created",
                       "started", "finished"]

    def get_fields(self, request: HttpRequest, obj: ImportJob | None = None) -> list[str]:
        return ["collection", "csv_file", "zip_file"] if obj is None else self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: ImportJob | None = None) -> list[str]:
        return [] if obj is None else self.readonly_fields

    def has_change_permission(self, request: HttpRequest, obj: ImportJob | None = None) -> bool:
        return False  # a job is read-only once started: its page shows progress

    def save_model(self, request: HttpRequest, obj: ImportJob, form: ImportJobForm, change: bool) -> None:
        job = import_job_create(collection=form.cleaned_data["collection"], csv_file=form.cleaned_data["csv_file"],
                                zip_file=form.cleaned_data["zip_file"], user=request.user)
        obj.pk = job.pk
        obj.refresh_from_db()

    @admin.display(description="Progress")
    def progress(self, obj: ImportJob) -> str:
        return (f"{obj.processed} / {obj.total or '?'} rows · {obj.imported} imported · {obj.duplicate} duplicate · "
                f"{obj.rejected} rejected")

    @admin.display(description="First rejected rows")
    def rejections(self, obj: ImportJob) -> str:
        rows = obj.rows.filter(outcome=ImportRow.Outcome.REJECTED).order_by("row")[:REJECTIONS_SHOWN]
        if not rows:
            return "–"
        return format_html("<ul style='margin:0;padding-left:1em'>{}</ul>", format_html_join(
            "", "<li>row {}: {} — {}</li>", ((r.row, r.image or "(no image)", r.reason) for r in rows)))

    @admin.display(description="Report")
    def report(self, obj: ImportJob) -> str:
        return format_html('<a href="{}">Download the per-row report (CSV)</a>',
                           reverse("api-import-report", args=[obj.pk]))
