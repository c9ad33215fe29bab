from django.urls import path

from integrations.slack import views, web

urlpatterns = [
    path("slack/events", views.slack_events, name="slack-events"),
    path("slack/link/", web.slack_link, name="slack-link"),
]
