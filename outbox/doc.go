// Package outbox delivers what subscription transitions queued in their own
// transaction: publisher notifications (Notifier: signed webhooks, one
// publisher at a time each, retried under one webhook-id) and customer emails
// (Mailer: SMTP, retried under one Message-ID). Neither is a Temporal activity:
// a publisher or mail server that is down for a day costs no workflow history.
package outbox
