package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/email"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/vault"
	"github.com/partnerhub/fulfillment/wire"
)

// Mailer sends the email outbox that transitions and contact changes fill:
// each row is rendered from its kind's template and handed to the SMTP
// server, retried with backoff until the server takes it. The Message-ID
// derives from the outbox id, so a retry after an unclear failure (the
// server took the message but the answer was lost) shows as the same message
// in the reader's mail client. Like the Notifier it runs beside the workflow,
// so a slow mail server never grows a subscription's history.
type Mailer struct {
	Store  *store.Store
	Vault  *vault.Vault
	Sender email.Sender
	Logger *slog.Logger
	// PortalURL is where welcome emails send contacts (empty: no link).
	PortalURL string
	Interval  time.Duration // how often the outbox is polled
	MaxDelay  time.Duration // cap of the retry backoff
	// BaseDelay is the first retry's delay (default one second).
	BaseDelay time.Duration
}

// Run sends until ctx ends.
func (m *Mailer) Run(ctx context.Context) {
	if m.Interval == 0 {
		m.Interval = 250 * time.Millisecond
	}
	ticker := time.NewTicker(m.Interval)
	defer ticker.Stop()
	for {
		if err := m.SendDue(ctx); err != nil && ctx.Err() == nil {
			m.Logger.Warn("send emails", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// errSkip marks an email that no longer applies.
var errSkip = errors.New("no longer applies")

// SendDue sends every email due now.
func (m *Mailer) SendDue(ctx context.Context) error {
	due, err := m.Store.ClaimDueEmails(ctx, 20, time.Minute)
	if err != nil {
		return err
	}
	for _, p := range due {
		err := m.send(ctx, p)
		switch {
		case errors.Is(err, errSkip):
			if err := m.Store.MarkEmailSkipped(ctx, p.ID, err.Error()); err != nil {
				return err
			}
		case email.Undeliverable(err):
			m.Logger.Warn("email undeliverable, not retried", "email_id", p.ID, "kind", p.Kind,
				"subscription_id", p.SubscriptionID, "error", err)
			if err := m.Store.MarkEmailSkipped(ctx, p.ID, "undeliverable: "+err.Error()); err != nil {
				return err
			}
		case err != nil:
			delay := m.backoff(p.Attempts)
			m.Logger.Info("email not sent", "email_id", p.ID, "kind", p.Kind, "subscription_id", p.SubscriptionID,
				"attempt", p.Attempts+1, "retry_in", delay, "error", err)
			if err := m.Store.MarkEmailFailed(ctx, p.ID, time.Now().Add(delay), err.Error()); err != nil {
				return err
			}
		default:
			if err := m.Store.MarkEmailSent(ctx, p.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// backoff doubles from BaseDelay up to MaxDelay, with jitter.
func (m *Mailer) backoff(attempts int) time.Duration {
	base, ceiling := m.BaseDelay, m.MaxDelay
	if base == 0 {
		base = time.Second
	}
	if ceiling == 0 {
		ceiling = 10 * time.Minute
	}
	d := base << min(attempts, 20)
	if d > ceiling || d <= 0 {
		d = ceiling
	}
	return d/2 + rand.N(d/2+1)
}

func (m *Mailer) send(ctx context.Context, p store.PendingEmail) error {
	d, err := p.Data()
	if err != nil {
		return err
	}
	switch p.Kind {
	case email.KindWelcome:
		d.PortalURL = m.PortalURL
	case email.KindRenewalReminder:
		// Re-check at send time: the subscription may have stopped renewing.
		still, err := m.Store.RenewalStillDue(ctx, *p.SubscriptionID, d.TermNumber)
		if err != nil {
			return err
		}
		if !still {
			return fmt.Errorf("renewal reminder: %w", errSkip)
		}
	case email.KindSignIn:
		if m.PortalURL == "" {
			return fmt.Errorf("sign-in link: PORTAL_URL is not set: %w", errSkip)
		}
		d.SignInURL = email.SignInURL(m.PortalURL, m.Vault.SignInToken(d.SignInLinkID))
	case email.KindOrderPlaced:
		if d.NeedsSetup {
			if d.SetupURL, err = m.setupURL(ctx, *p.SubscriptionID); err != nil {
				return err
			}
		}
	}
	msg, err := email.Render(p.Kind, p.ID, d)
	if err != nil {
		return err
	}
	return m.Sender.Send(ctx, msg)
}

// setupURL is the publisher link of a subscription that still waits for
// fulfillment (the code is derived, never stored); empty once set up.
func (m *Mailer) setupURL(ctx context.Context, subscriptionID string) (string, error) {
	sub, err := m.Store.Subscription(ctx, subscriptionID)
	if err != nil {
		return "", fmt.Errorf("subscription %s: %w", subscriptionID, err)
	}
	if sub.Status != domain.StatusPendingFulfillment {
		return "", nil
	}
	pub, err := m.Store.Publisher(ctx, sub.PublisherID)
	if err != nil {
		return "", fmt.Errorf("publisher %s: %w", sub.PublisherID, err)
	}
	return wire.NewPublisherLink(pub.LandingURL, m.Vault.AuthorizationCode(sub.ID), sub.ActivationDeadline).URL, nil
}
