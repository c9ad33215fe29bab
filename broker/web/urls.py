from django.urls import path

from broker.web import audit, insights, locks, metrics, reviews, views

urlpatterns = [
    path("", views.home, name="home"),
    path("requests/new/", views.request_new, name="request-new"),
    path("requests/<uuid:request_id>/", views.request_detail, name="request-detail"),
    path("requests/<uuid:request_id>/decide/", views.request_decide, name="request-decide"),
    path("requests/<uuid:request_id>/cancel/", views.request_cancel, name="request-cancel"),
    path("requests/<uuid:request_id>/label/", views.request_label, name="request-label"),
    path("grants/<uuid:grant_id>/", views.grant_detail, name="grant-detail"),
    path("grants/<uuid:grant_id>/reveal/", views.grant_reveal, name="grant-reveal"),
    path("grants/<uuid:grant_id>/revoke/", views.grant_revoke, name="grant-revoke"),
    path("grants/<uuid:grant_id>/extend/", views.grant_extend, name="grant-extend"),
    path("audit/", audit.audit_log, name="audit-log"),
    path("audit/verify/", audit.audit_verify, name="audit-verify"),
    path("audit/export/", audit.audit_export, name="audit-export"),
    path("audit/keys.json", audit.audit_keys, name="audit-keys"),
    path("audit/evidence-pack/", audit.audit_evidence_pack, name="audit-evidence-pack"),
    path("locks/", locks.locks, name="locks"),
    path("locks/new/", locks.lock_new, name="lock-new"),
    path("locks/<uuid:lock_id>/lift/", locks.lock_lift, name="lock-lift"),
    path("access-reviews/", reviews.access_reviews, name="access-reviews"),
    path("access-reviews/new/", reviews.access_review_new, name="access-review-new"),
    path("access-reviews/<uuid:review_id>/", reviews.access_review, name="access-review"),
    path(
        "access-reviews/<uuid:review_id>/people/<int:item_id>/decide/",
        reviews.access_review_decide,
        name="access-review-decide",
    ),
    path(
        "access-reviews/<uuid:review_id>/evidence.json",
        reviews.access_review_evidence,
        name="access-review-evidence",
    ),
    path(
        "access-reviews/<uuid:review_id>/catalog.patch",
        reviews.access_review_patch,
        name="access-review-patch",
    ),
    path(
        "access-reviews/removals/<int:removal_id>/lift/",
        reviews.review_removal_lift,
        name="review-removal-lift",
    ),
    path("insights/", insights.insights_page, name="insights"),
    path("insights/<slug:name>.csv", insights.insights_csv, name="insights-csv"),
    path("ops/", audit.ops, name="ops"),
    path("ops/grants/<uuid:grant_id>/retry/", audit.ops_retry_revocation, name="ops-retry"),
    path("metrics", metrics.metrics, name="metrics"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
]
