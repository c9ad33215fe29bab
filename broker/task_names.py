"""The core's Celery tasks, by name: the lifecycle queues them without importing
the tasks module (which imports the lifecycle), and beat schedules them from the
settings. broker/tasks.py registers each task under exactly these names."""

ACTIVATE_GRANT = "broker.tasks.activate_grant"
EXPIRE_GRANT = "broker.tasks.expire_grant"
REVOKE_GRANT = "broker.tasks.revoke_grant"
EXTEND_GRANT = "broker.tasks.extend_grant"
SWEEP = "broker.tasks.sweep"
EXPIRE_GRANTS = "broker.tasks.expire_grants"
WATCH = "broker.tasks.watch"
RECONCILE = "broker.tasks.reconcile"
ROLL_UP_INSIGHTS = "broker.tasks.roll_up_insights"
TRAIN_RISK_MODEL = "broker.tasks.train_risk_model"
TICK_ACCESS_REVIEWS = "broker.tasks.tick_access_reviews"
TICK_EXTERNALS = "broker.tasks.tick_externals"
