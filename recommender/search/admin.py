"""Admin for the search area: retrieval-quality reports (read-only; written by `evaluate_retrieval`)."""
from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from ..models import RetrievalReport


@admin.register(RetrievalReport)
class RetrievalReportAdmin(admin.ModelAdmin):
    list_display = ["created", "collection", "background_removed", "models", "best_map", "query_splits", "seconds"]
    list_filter = ["collection", "background_removed"]
    fields = ["collection", "created", "background_removed", "query_splits", "gallery_split", "k_values",
              "ef_search", "seconds", "metrics_table", "table"]
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

    @admin.display(description="Metrics")
    def metrics_table(self, obj: RetrievalReport) -> str:
        keys = [f"{name}@{k}" for k in obj.k_values for name in ("precision", "recall", "map")]
        head = format_html_join("", "<th>{}</th>", ((key,) for key in ["model", "queries", "gallery", *keys]))
        body = format_html_join("", "<tr>{}</tr>", (
            (format_html_join("", "<td>{}</td>", ((value,) for value in [
                row["model"], row["queries"], row["gallery"], *(f"{row['metrics'][key]:.3f}" for key in keys)])),)
            for row in obj.rows))
        return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)
