"""Style discovery: jobs, clusterings, the map, coherence ratings, the classifier and curation."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from pgvector.django import HalfVectorField

from catalog.models import Collection, Item

from .embeddings import EmbeddingModel


class StyleJob(models.Model):
    """One clustering or classifier run; the page polls its progress."""

    class Kind(models.TextChoices):
        CLUSTER = "cluster", "Clustering and map"
        CLASSIFY = "classify", "Classifier and curation"
        SIMILARITY = "similarity", "Learned similarity space"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="style_jobs")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    params = models.JSONField(default=dict, blank=True)
    progress = models.FloatField(default=0.0, help_text="0 to 1.")
    message = models.CharField(max_length=300, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.collection} ({self.status})"

    @property
    def active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)


class StyleClustering(models.Model):
    """A collection's current clustering: the chosen k, both curves and how the map was drawn."""

    collection = models.OneToOneField(Collection, on_delete=models.CASCADE, related_name="style_clustering")
    model = models.ForeignKey(EmbeddingModel, on_delete=models.CASCADE, related_name="+")
    k = models.PositiveSmallIntegerField()
    silhouette = models.FloatField()
    silhouette_by_k = models.JSONField(default=dict)
    inertia_by_k = models.JSONField(default=dict)
    map_method = models.CharField(max_length=10)
    items = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0.0)
    created = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.collection}: k={self.k}"


class StyleCluster(models.Model):
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="style_clusters")
    model = models.ForeignKey(EmbeddingModel, on_delete=models.CASCADE, related_name="+")
    k = models.PositiveSmallIntegerField()
    index = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=100)
    named_by_curator = models.BooleanField(default=False, help_text="Kept across re-clustering when matched.")
    size = models.PositiveIntegerField(default=0)
    label_mix = models.JSONField(default=dict, help_text="label -> number of items")
    centroid = HalfVectorField()

    class Meta:
        ordering = ["collection", "index"]
        constraints = [models.UniqueConstraint(fields=["collection", "index"], name="unique_cluster_index")]

    def __str__(self) -> str:
        return f"{self.index}: {self.name}"

    def save(self, *args, **kwargs) -> None:
        # A curator renaming a cluster in the admin marks the name as theirs.
        if self.pk and "update_fields" not in kwargs:
            stored = StyleCluster.objects.filter(pk=self.pk).values_list("name", flat=True).first()
            if stored is not None and stored != self.name:
                self.named_by_curator = True
        super().save(*args, **kwargs)


class ItemStyle(models.Model):
    """An item's cluster and its place on the style map."""

    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="style")
    cluster = models.ForeignKey(StyleCluster, on_delete=models.CASCADE, related_name="members")
    x = models.FloatField()
    y = models.FloatField()


class CoherenceSet(models.Model):
    """Images shown together to ask "do these feel alike?"; a control set mixes clusters."""

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="coherence_sets")
    cluster = models.ForeignKey(StyleCluster, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="coherence_sets", help_text="Empty for a control set.")
    is_control = models.BooleanField(default=False)
    items = models.ManyToManyField(Item, related_name="+")
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"set {self.pk} ({'control' if self.is_control else self.cluster})"


class CoherenceRating(models.Model):
    set = models.ForeignKey(CoherenceSet, on_delete=models.CASCADE, related_name="ratings")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="coherence_ratings")
    score = models.PositiveSmallIntegerField(help_text="1 (not alike) to 5 (clearly alike).")
    group = models.CharField(max_length=150, blank=True, help_text="The user's group when rated, if any.")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["set", "user"], name="unique_rating_per_user_set"),
            models.CheckConstraint(condition=models.Q(score__gte=1, score__lte=5), name="rating_score_1_to_5"),
        ]


class StyleClassifier(models.Model):
    """A trained head on a model's embeddings; the newest per collection is the one used."""

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="style_classifiers")
    model = models.ForeignKey(EmbeddingModel, on_delete=models.CASCADE, related_name="+")
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=20)
    fingerprint = models.CharField(max_length=64)
    artifact = models.CharField(max_length=500, help_text="Path under STYLESITE_ARTIFACT_DIR.")
    classes = models.JSONField(default=list)
    candidates = models.JSONField(default=list)
    validation = models.JSONField(default=dict)
    test = models.JSONField(default=dict)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["collection", "version"], name="unique_classifier_version")]

    def __str__(self) -> str:
        return f"{self.collection} classifier v{self.version} ({self.kind})"


class StylePrediction(models.Model):
    """The classifier's and the neighbours' opinion of an item's label (curation's input)."""

    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="style_prediction")
    classifier = models.ForeignKey(StyleClassifier, on_delete=models.CASCADE, related_name="predictions")
    label = models.CharField(max_length=100)
    probability = models.FloatField()
    neighbour_label = models.CharField(max_length=100, blank=True)
    neighbour_share = models.FloatField(default=0.0)

    class Meta:
        indexes = [models.Index(fields=["classifier", "label", "-probability"], name="styleprediction_label_prob")]

    def __str__(self) -> str:
        return f"{self.item}: {self.label} {self.probability:.0%}"


class Mislabel(StylePrediction):
    """Admin view of predictions that disagree with the item's label (see ``recommender.styles.admin``)."""

    class Meta:
        proxy = True
        verbose_name = "possible mislabel"


class NearDuplicate(models.Model):
    class Resolution(models.TextChoices):
        OPEN = "open", "Open"
        KEPT = "kept", "Kept both"
        MERGED = "merged", "Merged"

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="near_duplicates")
    first = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    second = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    similarity = models.FloatField()
    resolution = models.CharField(max_length=8, choices=Resolution.choices, default=Resolution.OPEN)

    class Meta:
        ordering = ["-similarity"]
        constraints = [models.UniqueConstraint(fields=["first", "second"], name="unique_duplicate_pair")]

    def __str__(self) -> str:
        return f"{self.first} ≈ {self.second} ({self.similarity:.3f})"
