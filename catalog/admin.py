from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from .models import Collection, Item, ItemImage
from .selectors import image_progress
from .services import image_mark_pending


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
                       "attempts", "foreground_share", "created"]
    fields = ["side_by_side", "item", "suspect", "status", "error", "status_changed", "attempts",
              "foreground_share", "width", "height", "sha256", "position", "created"]
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
