"""Preference area: voter profiles (respondents, simulated visitors), evaluation reports, served predictor."""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0001_initial"),
        ("recommender", "0002_retrieval"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='PreferenceReport',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created', models.DateTimeField(auto_now_add=True)),
                ('split', models.CharField(help_text="'stored' (train/validation votes) or 'holdout seed N'.", max_length=40)),
                ('n_users', models.PositiveIntegerField()),
                ('n_votes', models.PositiveIntegerField()),
                ('dropped_duplicates', models.PositiveIntegerField(default=0)),
                ('results', models.JSONField(help_text='Per predictor: accuracy, AUC, unsure share, …')),
                ('best', models.CharField(max_length=30)),
                ('roc_svg', models.TextField(blank=True)),
                ('collection', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='preference_reports', to='catalog.collection')),
            ],
            options={
                'ordering': ['-created'],
            },
        ),
        migrations.CreateModel(
            name='ServedPredictor',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=30)),
                ('updated', models.DateTimeField(auto_now=True)),
                ('collection', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='served_predictor', to='catalog.collection')),
                ('report', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to='recommender.preferencereport')),
            ],
        ),
        migrations.CreateModel(
            name='VoterProfile',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('respondent', 'Survey respondent'), ('simulated', 'Simulated visitor')], max_length=12)),
                ('external_id', models.CharField(max_length=100)),
                ('created', models.DateTimeField(auto_now_add=True)),
                ('user', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='voter_profile', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('kind', 'external_id'), name='unique_voter_external_id')],
            },
        ),
    ]
