# The style area's tables: clustering jobs and results, the map, coherence ratings, the
# classifier and its predictions, near-duplicate pairs.
import django.db.models.deletion
import pgvector.django.halfvec
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('catalog', '0001_initial'),
        ('recommender', '0003_preferences'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='StyleClassifier',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('version', models.PositiveIntegerField()),
                ('kind', models.CharField(max_length=20)),
                ('fingerprint', models.CharField(max_length=64)),
                ('artifact', models.CharField(help_text='Path under STYLESITE_MODEL_CACHE.', max_length=500)),
                ('classes', models.JSONField(default=list)),
                ('candidates', models.JSONField(default=list)),
                ('validation', models.JSONField(default=dict)),
                ('test', models.JSONField(default=dict)),
                ('created', models.DateTimeField(auto_now_add=True)),
                ('collection', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='style_classifiers', to='catalog.collection')),
                ('model', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='recommender.embeddingmodel')),
            ],
            options={
                'ordering': ['-version'],
            },
        ),
        migrations.CreateModel(
            name='StyleCluster',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('k', models.PositiveSmallIntegerField()),
                ('index', models.PositiveSmallIntegerField()),
                ('name', models.CharField(max_length=100)),
                ('named_by_curator', models.BooleanField(default=False, help_text='Kept across re-clustering when matched.')),
                ('size', models.PositiveIntegerField(default=0)),
                ('label_mix', models.JSONField(default=dict, help_text='label -> number of items')),
                ('centroid', pgvector.django.halfvec.HalfVectorField()),
                ('collection', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='style_clusters', to='catalog.collection')),
                ('model', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='recommender.embeddingmodel')),
            ],
            options={
                'ordering': ['collection', 'index'],
            },
        ),
        migrations.CreateModel(
            name='ItemStyle',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('x', models.FloatField()),
                ('y', models.FloatField()),
                ('item', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='style', to='catalog.item')),
                ('cluster', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='members', to='recommender.stylecluster')),
            ],
        ),
        migrations.CreateModel(
            name='CoherenceSet',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('is_control', models.BooleanField(default=False)),
                ('created', models.DateTimeField(auto_now_add=True)),
                ('collection', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='coherence_sets', to='catalog.collection')),
                ('items', models.ManyToManyField(related_name='+', to='catalog.item')),
                ('cluster', models.ForeignKey(blank=True, help_text='Empty for a control set.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='coherence_sets', to='recommender.stylecluster')),
            ],
        ),
        migrations.CreateModel(
            name='StyleClustering',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('k', models.PositiveSmallIntegerField()),
                ('silhouette', models.FloatField()),
                ('silhouette_by_k', models.JSONField(default=dict)),
                ('inertia_by_k', models.JSONField(default=dict)),
                ('map_method', models.CharField(max_length=10)),
                ('items', models.PositiveIntegerField(default=0)),
                ('seconds', models.FloatField(default=0.0)),
                ('created', models.DateTimeField(auto_now=True)),
                ('collection', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='style_clustering', to='catalog.collection')),
                ('model', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='recommender.embeddingmodel')),
            ],
        ),
        migrations.CreateModel(
            name='StyleJob',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('cluster', 'Clustering and map'), ('classify', 'Classifier and curation')], max_length=10)),
                ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('done', 'Done'), ('failed', 'Failed')], db_index=True, default='queued', max_length=10)),
                ('params', models.JSONField(blank=True, default=dict)),
                ('progress', models.FloatField(default=0.0, help_text='0 to 1.')),
                ('message', models.CharField(blank=True, max_length=300)),
                ('result', models.JSONField(blank=True, default=dict)),
                ('error', models.TextField(blank=True)),
                ('created', models.DateTimeField(auto_now_add=True)),
                ('started', models.DateTimeField(blank=True, null=True)),
                ('finished', models.DateTimeField(blank=True, null=True)),
                ('collection', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='style_jobs', to='catalog.collection')),
            ],
            options={
                'ordering': ['-created', '-id'],
            },
        ),
        migrations.CreateModel(
            name='StylePrediction',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('label', models.CharField(max_length=100)),
                ('probability', models.FloatField()),
                ('neighbour_label', models.CharField(blank=True, max_length=100)),
                ('neighbour_share', models.FloatField(default=0.0)),
                ('classifier', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='predictions', to='recommender.styleclassifier')),
                ('item', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='style_prediction', to='catalog.item')),
            ],
        ),
        migrations.CreateModel(
            name='Mislabel',
            fields=[
            ],
            options={
                'verbose_name': 'possible mislabel',
                'proxy': True,
                'indexes': [],
                'constraints': [],
            },
            bases=('recommender.styleprediction',),
        ),
        migrations.CreateModel(
            name='CoherenceRating',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('score', models.PositiveSmallIntegerField(help_text='1 (not alike) to 5 (clearly alike).')),
                ('group', models.CharField(blank=True, help_text="The user's group when rated, if any.", max_length=150)),
                ('created', models.DateTimeField(auto_now_add=True)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='coherence_ratings', to=settings.AUTH_USER_MODEL)),
                ('set', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='ratings', to='recommender.coherenceset')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('set', 'user'), name='unique_rating_per_user_set'), models.CheckConstraint(condition=models.Q(('score__gte', 1), ('score__lte', 5)), name='rating_score_1_to_5')],
            },
        ),
        migrations.CreateModel(
            name='NearDuplicate',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('similarity', models.FloatField()),
                ('resolution', models.CharField(choices=[('open', 'Open'), ('kept', 'Kept both'), ('merged', 'Merged')], default='open', max_length=8)),
                ('collection', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='near_duplicates', to='catalog.collection')),
                ('first', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='catalog.item')),
                ('second', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='catalog.item')),
            ],
            options={
                'ordering': ['-similarity'],
                'constraints': [models.UniqueConstraint(fields=('first', 'second'), name='unique_duplicate_pair')],
            },
        ),
        migrations.AddConstraint(
            model_name='styleclassifier',
            constraint=models.UniqueConstraint(fields=('collection', 'version'), name='unique_classifier_version'),
        ),
        migrations.AddConstraint(
            model_name='stylecluster',
            constraint=models.UniqueConstraint(fields=('collection', 'index'), name='unique_cluster_index'),
        ),
        migrations.AddIndex(
            model_name='styleprediction',
            index=models.Index(fields=['classifier', 'label', '-probability'], name='styleprediction_label_prob'),
        ),
    ]
