package service

import (
	"context"
	"net/mail"
	"strings"

	"github.com/partnerhub/fulfillment/email"
	"github.com/partnerhub/fulfillment/outbox"
)

// startMailer runs the email dispatcher when SMTP_URL is set; without it the
// outbox only fills, and the log says so. The returned stop waits for it.
func startMailer(ctx context.Context, d *Deps) (stop func(), err error) {
	if d.Config.SMTPURL == "" {
		d.Logger.Info("SMTP_URL not set: emails to customer contacts are queued but not sent")
		return func() {}, nil
	}
	sender, err := email.NewSMTP(d.Config.SMTPURL, d.Config.SMTPFrom, messageIDDomain(d.Config.SMTPFrom))
	if err != nil {
		return nil, err
	}
	m := &outbox.Mailer{Store: d.Store, Vault: d.Vault, Sender: sender, Logger: d.Logger, PortalURL: d.Config.PortalURL}
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	d.Logger.Info("sending customer emails", "smtp_url", maskedSMTP(d.Config.SMTPURL), "from", d.Config.SMTPFrom)
	return func() { <-done }, nil
}

// messageIDDomain is the domain of the From address (Message-IDs end in it).
func messageIDDomain(from string) string {
	if a, err := mail.ParseAddress(from); err == nil {
		if _, domain, ok := strings.Cut(a.Address, "@"); ok {
			return domain
		}
	}
	return "fulfillment.localhost"
}

func maskedSMTP(raw string) string {
	if i := strings.Index(raw, "://"); i >= 0 {
		if at := strings.LastIndex(raw, "@"); at > i {
			return raw[:i+3] + "***@" + raw[at+1:]
		}
	}
	return raw
}
