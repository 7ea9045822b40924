"""URLs of the preference area: `pages` mount under the site root, `api` under /api/."""
from django.urls import URLPattern, path

from . import api as api_views
from . import views
from .vote_stats_api import VoteStatsView

pages: list[URLPattern] = [
    path("accounts/signup/", views.signup, name="signup"),
    path("for-you/", views.for_you, name="for-you"),
    path("for-you/next/", views.rate_next, name="rate-next"),
    path("me/likes/", views.my_likes, name="my-likes"),
    path("staff/respondents/", views.respondents, name="respondents"),
]
api: list[URLPattern] = [
    path("votes/", api_views.VoteListView.as_view(), name="api-votes"),
    path("votes/<int:item_id>/", api_views.VoteDetailView.as_view(), name="api-vote"),
    path("me/feed/", api_views.FeedView.as_view(), name="api-feed"),
    path("me/next/", api_views.NextView.as_view(), name="api-next"),
    path("me/predict/", api_views.PredictView.as_view(), name="api-predict"),
    path("stats/votes/", VoteStatsView.as_view(), name="api-stats-votes"),
]
