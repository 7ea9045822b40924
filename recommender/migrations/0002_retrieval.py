# The search area's tables: retrieval-quality reports written by `evaluate_retrieval`.
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial"), ("recommender", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="RetrievalReport",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("background_removed", models.BooleanField(help_text="Whether the collection cut subjects out before embedding.")),
                ("query_splits", models.CharField(help_text="Splits whose items were the queries.", max_length=100)),
                ("gallery_split", models.CharField(help_text="Split searched for neighbours.", max_length=20)),
                ("k_values", models.JSONField(help_text="The cut-offs k, ascending.")),
                ("ef_search", models.PositiveIntegerField()),
                ("rows", models.JSONField()),
                ("table", models.TextField()),
                ("seconds", models.FloatField()),
                ("created", models.DateTimeField(auto_now_add=True)),
                ("collection", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="retrieval_reports", to="catalog.collection")),
            ],
            options={"ordering": ["-created", "-id"]},
        ),
    ]
