from django.urls import path

from approvals import views

urlpatterns = [
    path("approvals/", views.queue, name="approval-queue"),
    path("reviews/", views.reviews, name="reviews"),
    path("reviews/<uuid:request_id>/close/", views.review_close, name="review-close"),
]
