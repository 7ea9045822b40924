"""Preference area: who a voter is, which predictor a collection serves, and evaluation reports."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from catalog.models import Collection


class VoterProfile(models.Model):
    """Marks users who are not people signing in: imported survey respondents and simulated visitors.

    Both get an unusable password; ``external_id`` is the respondent id of the survey, or the
    simulator's own id, so re-running an import or the simulator finds the same user.
    """

    class Kind(models.TextChoices):
        RESPONDENT = "respondent", "Survey respondent"
        SIMULATED = "simulated", "Simulated visitor"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="voter_profile")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    external_id = models.CharField(max_length=100)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "external_id"], name="unique_voter_external_id")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.external_id}"


class PreferenceReport(models.Model):
    """One run of ``evaluate_preferences``: the table it printed and its ROC curves (an SVG)."""

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="preference_reports")
    created = models.DateTimeField(auto_now_add=True)
    split = models.CharField(max_length=40, help_text="'stored' (train/validation votes) or 'holdout seed N'.")
    n_users = models.PositiveIntegerField()
    n_votes = models.PositiveIntegerField()
    dropped_duplicates = models.PositiveIntegerField(default=0)
    results = models.JSONField(help_text="Per predictor: accuracy, AUC, unsure share, …")
    best = models.CharField(max_length=30, help_text="The predictor served: chosen on validation votes, never the test.")
    served_reason = models.TextField(blank=True, help_text="Why it was served (it beat the best baseline, or not).")
    validation = models.JSONField(default=dict, blank=True, help_text="Mean per-user AUC on validation votes.")
    families = models.JSONField(default=dict, blank=True,
                                help_text="Per predictor, mean per-user test AUC per simulated taste family.")
    roc_svg = models.TextField(blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.collection} {self.created:%Y-%m-%d %H:%M} (best: {self.best})"


class ServedPredictor(models.Model):
    """The predictor a collection's feed uses: the best on its latest evaluation."""

    collection = models.OneToOneField(Collection, on_delete=models.CASCADE, related_name="served_predictor")
    name = models.CharField(max_length=30)
    report = models.ForeignKey(PreferenceReport, on_delete=models.SET_NULL, null=True, blank=True)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.collection}: {self.name}"


class PreferenceModel(models.Model):
    """A collection's served predictor as last fitted (in Celery) on all its votes: a versioned artifact.

    The artifact holds the predictor and the vector matrix it was fitted on (item ids and their
    vectors), so a web process needs nothing else to answer from it.
    """

    collection = models.OneToOneField(Collection, on_delete=models.CASCADE, related_name="preference_model")
    name = models.CharField(max_length=30)
    version = models.PositiveIntegerField(default=1)
    matrix_key = models.CharField(max_length=100, help_text="Active model, vector count and newest vector id.")
    votes = models.PositiveIntegerField(default=0)
    artifact = models.CharField(max_length=300)
    fit_seconds = models.FloatField(default=0.0)
    fitted = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.collection}: {self.name} v{self.version}"


class ItemDescriptor(models.Model):
    """An item's colour/brightness/saturation/pattern descriptors (``ml.descriptors``), computed
    once from its cut-out (else thumbnail, else original) by the preference fit task."""

    item = models.OneToOneField("catalog.Item", on_delete=models.CASCADE, related_name="descriptor")
    version = models.PositiveSmallIntegerField(help_text="ml.descriptors.DESCRIPTOR_VERSION it was computed with.")
    values = models.JSONField(help_text="Floats in the order of ml.descriptors.DESCRIPTOR_NAMES.")
    computed = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"descriptors of item {self.item_id} (v{self.version})"
