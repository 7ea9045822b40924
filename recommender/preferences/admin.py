"""Admin of the preference area: votes, evaluation reports (with their ROC curves), served predictors, voters."""
from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from ..models import PreferenceReport, ServedPredictor, Vote, VoterProfile

COLUMNS = [("accuracy_at_zero", "accuracy @0"), ("accuracy_at_roc", "accuracy @ROC"),
           ("accuracy_at_half", "accuracy @P=0.5"), ("auc", "ROC AUC"),
           ("mean_user_auc", "mean user AUC"), ("unsure_share", "unsure"), ("accuracy_decided", "accuracy decided"),
           ("brier", "Brier"), ("fit_seconds", "fit s")]


@admin.register(PreferenceReport)
class PreferenceReportAdmin(admin.ModelAdmin):
    list_display = ["created", "collection", "split", "best", "best_auc", "n_users", "n_votes"]
    list_filter = ["collection"]
    exclude = ["results", "roc_svg"]
    readonly_fields = ["collection", "created", "split", "n_users", "n_votes", "dropped_duplicates", "best",
                       "table", "roc_curves"]

    def has_add_permission(self, request) -> bool:
        return False  # reports come from `manage.py evaluate_preferences`

    @admin.display(description="Best AUC")
    def best_auc(self, obj: PreferenceReport) -> str:
        return f"{obj.results.get(obj.best, {}).get('auc', float('nan')):.3f}"

    @admin.display(description="Results (reference study: 77.6 % accuracy)")
    def table(self, obj: PreferenceReport) -> str:
        head = format_html_join("", "<th>{}</th>", ((label,) for _, label in COLUMNS))
        rows = format_html_join("", "<tr><th>{}</th>{}</tr>", (
            (name, format_html_join("", "<td>{}</td>",
                                    ((f"{values.get(key, float('nan')):.3f}",) for key, _ in COLUMNS)))
            for name, values in obj.results.items()))
        return format_html("<table><thead><tr><th>predictor</th>{}</tr></thead><tbody>{}</tbody></table>", head, rows)

    @admin.display(description="ROC curves")
    def roc_curves(self, obj: PreferenceReport) -> str:
        return mark_safe(obj.roc_svg)  # written by ml.preferences.roc_svg, names escaped there


@admin.register(ServedPredictor)
class ServedPredictorAdmin(admin.ModelAdmin):
    list_display = ["collection", "name", "report_link", "updated"]
    readonly_fields = ["updated"]

    @admin.display(description="Report")
    def report_link(self, obj: ServedPredictor) -> str:
        if obj.report_id is None:
            return "-"
        url = reverse("admin:recommender_preferencereport_change", args=[obj.report_id])
        return format_html('<a href="{}">{}</a>', url, obj.report)


@admin.register(VoterProfile)
class VoterProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "kind", "external_id", "created"]
    list_filter = ["kind"]
    search_fields = ["external_id", "user__username"]
    raw_id_fields = ["user"]


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = ["user", "item", "value", "source", "split", "updated"]
    list_filter = ["value", "source", "split", "item__collection"]
    search_fields = ["user__username", "item__title"]
    raw_id_fields = ["user", "item"]
