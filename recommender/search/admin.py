"""Admin for the search area: retrieval-quality reports (read-only; written by `evaluate_retrieval`)."""
from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from ml.plots import grouped_bars_svg

from ..models import RetrievalReport


@admin.register(RetrievalReport)
class RetrievalReportAdmin(admin.ModelAdmin):
    list_display = ["created", "collection", "background_removed", "models", "best_map", "query_splits", "seconds"]
    list_filter = ["collection", "background_removed"]
    fields = ["collection", "created", "background_removed", "query_splits", "gallery_split", "k_values",
              "ef_search", "seconds", "chart", "metrics_table", "table"]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False  # reports come from `manage.py evaluate_retrieval`

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Models")
    def models(self, obj: RetrievalReport) -> str:
        return ", ".join(row["model"] for row in obj.rows)

    @admin.display(description="Best mAP@k (largest k)")
    def best_map(self, obj: RetrievalReport) -> str:
        key = f"map@{max(obj.k_values)}"
        values = [row["metrics"].get(key, 0.0) for row in obj.rows]
        return f"{max(values):.3f}" if values else "–"

    @admin.display(description="Chart")
    def chart(self, obj: RetrievalReport) -> str:
        """Same-label precision at each k, one group of bars per row (model, or space and split)."""
        series = [f"P@{k}" for k in obj.k_values]
        rows = [(row["model"], [row["metrics"].get(f"precision@{k}", 0.0) for k in obj.k_values]) for row in obj.rows]
        return mark_safe(grouped_bars_svg(rows, series, title=f"Same-label precision, {obj.collection}"))  # noqa: S308 - names escaped in ml.plots

    @admin.display(description="Metrics")
    def metrics_table(self, obj: RetrievalReport) -> str:
        keys = [f"{name}@{k}" for k in obj.k_values for name in ("precision", "recall", "map")]
        head = format_html_join("", "<th>{}</th>", ((key,) for key in ["model", "queries", "gallery", *keys]))
        body = format_html_join("", "<tr>{}</tr>", (
            (format_html_join("", "<td>{}</td>", ((value,) for value in [
                row["model"], row["queries"], row["gallery"], *(f"{row['metrics'][key]:.3f}" for key in keys)])),)
            for row in obj.rows))
        return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)
