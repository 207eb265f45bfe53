-- Per-user notification preferences (PATCH /users/me {"notifications": {"email": false}}).
-- 1 = email notifications on (the default), 0 = off; the sender reads it at send time.
ALTER TABLE users ADD COLUMN notify_email INTEGER NOT NULL DEFAULT 1;
